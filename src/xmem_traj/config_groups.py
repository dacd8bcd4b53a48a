"""The option groups of TrainConfig (config.py), one dataclass each: every default of the
project, with its help, choices and range (config_fields.py: how a field is declared and
checked; the context group: config_context.py; train-xmem's own options: config_segmentation.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .config_fields import _f, split_list

#: How a model's modes may be ranked (traj/ranking.py).
RANKINGS = ("risk", "probability")
#: Model options that change no trained weight (decoding: traj/ranking.py, eval/road_snap.py):
#: a checkpoint is scored with the run's value, which eval, predict and compare may change.
DECODING_OPTIONS = ("ranking", "road_snap")

TRAJ_XMEM_CONFIG = {
    "mem_every": 1,
    "top_k": 30,
    "max_mid_term_frames": 10,
    "min_mid_term_frames": 5,
}


@dataclass
class DataConfig:
    """Which nuScenes, which splits and targets, and where caches live."""

    dataroot: str = _f(
        "",
        "nuScenes folder (v1.0-*/, samples/, sweeps/, maps/); empty: the "
        "synthetic nuScenes, generated on first use into the cache directory",
    )
    version: str = _f("", "table version (v1.0-mini, v1.0-trainval); empty: detected")
    train_split: str = _f("", "empty: mini_train for v1.0-mini, train for v1.0-trainval")
    val_split: str = _f("", "empty: mini_val for v1.0-mini, val for v1.0-trainval")
    challenge: bool = _f(
        True,
        "targets from maps/prediction/prediction_scenes.json (the "
        "prediction challenge split); --no-challenge: every agent",
    )
    categories: str = _f("vehicle", "comma list of category prefixes kept (empty: all)")
    frames: str = _f(
        "keyframes",
        "keyframes (2 Hz) or sweeps (every camera frame)",
        choices=("keyframes", "sweeps"),
    )
    history_s: float = _f(2.0, "seconds of past (the challenge allows 2)", min=0.5, max=2.0)
    future_s: float = _f(6.0, "seconds predicted (the challenge's horizon is 6)", min=0.5)
    cache_dir: str = _f(
        "", "synthetic data and feature cache; empty: $XMEM_TRAJ_CACHE or ~/.cache/xmem-traj"
    )

    @property
    def category_list(self) -> tuple[str, ...] | None:
        return tuple(split_list(self.categories)) or None

    def resolved_cache_dir(self) -> Path:
        return Path(
            self.cache_dir
            or os.environ.get("XMEM_TRAJ_CACHE")
            or Path.home() / ".cache" / "xmem-traj"
        ).expanduser()


@dataclass
class WorldConfig:
    """The synthetic default dataset (used when data.dataroot is empty)."""

    synth_train_scenes: int = _f(
        30,
        "scenes of the synthetic default dataset's train split "
        "(v1.0-trainval names of the challenge's train)",
        min=0,
        max=500,
    )
    synth_train_val_scenes: int = _f(
        6, "… of its train_val split (where choices are made)", min=0, max=200
    )
    synth_val_scenes: int = _f(16, "… of its val split (what the README reports)", min=0, max=150)
    synth_target_stride: int = _f(
        2,
        "the synthetic world lists a target every n-th key frame of an agent (2: every second)",
        min=1,
    )
    synth_seed: int = _f(0, "seed of the synthetic default dataset")

    @property
    def scene_counts(self) -> tuple[int, int, int]:
        return self.synth_train_scenes, self.synth_train_val_scenes, self.synth_val_scenes


#: The kinds of context objects XMem can remember beside the agent (data/context_objects.py).
CONTEXT_KINDS = ("leader", "signal")


@dataclass
class XMemConfig:
    """XMem: its weights, what it looks at and what is read out of it."""

    xmem_weights: str = _f(
        "",
        "official XMem checkpoint (XMem.pth, XMem-s012.pth); empty: "
        "seeded random init (features are untrained)",
    )
    features: str = _f("cues", "a feature set or a comma list of feature kinds")
    image_height: int = _f(144, "height of the frames fed to XMem", min=16)
    image_width: int = _f(256, "width of the frames fed to XMem", min=16)
    crop_size: int = _f(
        112, "side of the agent-centric crops fed to XMem (view agent/both)", min=16
    )
    context_objects: str = _f(
        "",
        "comma list of the objects XMem also remembers for each target, each in its own crops "
        "(data/context_objects.py): leader (the vehicle it follows, from the annotations), "
        "signal (the head of the traffic light controlling its approach, from the map "
        "expansion); their features join the agent's; empty: the agent alone",
    )
    finetune_xmem: str = _f(
        "",
        "comma list of XMem module prefixes to fine-tune (disables the "
        "feature cache; slow); empty: frozen",
    )
    videos_per_step: int = _f(8, "camera windows XMem steps in lockstep during extraction", min=1)
    precision: str = _f(
        "auto",
        "XMem's (and training's) arithmetic: bf16 (bfloat16, about 2× "
        "faster where the hardware has it), 32 (float32, the "
        "reference's), auto: bf16 where native (CPUs with AVX512-BF16 "
        "or AMX, GPUs with bf16), else 32",
        choices=("auto", "bf16", "32"),
    )

    @property
    def image_size(self) -> tuple[int, int]:
        return self.image_height, self.image_width

    @property
    def finetune_list(self) -> tuple[str, ...]:
        return tuple(split_list(self.finetune_xmem))

    @property
    def context_list(self) -> tuple[str, ...]:
        return tuple(split_list(self.context_objects))


@dataclass
class ModelConfig:
    """Which methods are trained and the shape of their heads."""

    methods: str = _f(
        "auto",
        "comma list of methods to train, the first is the run's main "
        "model (predict, viz); auto: the registry's defaults that the "
        "data supports",
    )
    map: bool = _f(
        True,
        "every method's head also sees the map around the agent: the map "
        "expansion's drivable area rasterised in its frame; --no-map: the "
        "past track (and the method's inputs) only",
    )
    hidden: int = _f(128, "head width", min=1)
    modes: int = _f(
        5,
        "predicted modes K (at most 25, the challenge's limit); >1 trains "
        "best-of-K with mode probabilities",
        min=1,
        max=25,
    )
    ranking: str = _f(
        "risk",
        "which mode is ranked first (the k = 1 metrics read only it): risk, the mode the "
        "model's own mode probabilities expect to end nearest the truth (least expected final "
        "displacement; its probability swaps with the highest); probability, the most probable. "
        "Decoding only: eval, predict and compare may change it for a trained run",
        choices=RANKINGS,
    )
    road_snap: float = _f(
        8.0,
        "decoding: a predicted point off the map's drivable area moves to the nearest point "
        "0.5 m inside it when one lies within this many metres, for agents that are on it "
        "themselves (eval/road_snap.py; 0: off; needs the map expansion). Decoding only, like "
        "--ranking",
        min=0.0,
    )
    vision: str = _f(
        "auto",
        "what the XMem model's head reads of the XMem features: cues "
        "(only the cue readout's per-frame probabilities, trained by the "
        "cue loss), features (their 128-wide projection: the seed's "
        "path), auto: cues where the data has cue labels (the synthetic "
        "world's side file), else features",
        choices=("auto", "cues", "features"),
    )
    dropout: float = _f(0.1, "dropout on the XMem feature branch of the head", min=0.0, max=0.95)
    cue_loss: float = _f(
        1.0,
        "weight of an auxiliary loss that asks the XMem model's feature "
        "branch to read the cues seen in each frame (labels from the "
        "synthetic world's side file, training only; off on data "
        "without one; 0: off)",
        min=0.0,
    )
    neighbours: bool = _f(
        True,
        "every method's head also sees the traffic around the agent: the past 2 s of the "
        "nearest annotated agents (all categories) in its frame (--neighbours-max, "
        "--neighbour-radius); --no-neighbours: the old history + map ablation",
    )
    peer_backbone: str = _f(
        "resnet18",
        "the devkit's CNN backbone of MTP and CoverNet (nuscenes.prediction.models.backbone: "
        "resnet18 … resnet152, mobilenet_v2; random init)",
        choices=("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "mobilenet_v2"),
    )
    peer_hidden: int = _f(
        4096, "width of MTP's and CoverNet's fully connected layer (the devkit's 4096)", min=1
    )

    @property
    def method_list(self) -> tuple[str, ...]:
        """The methods named (empty for "auto")."""
        return () if self.methods == "auto" else tuple(split_list(self.methods))


@dataclass
class OptimConfig:
    """Training schedule and seeds."""

    epochs: int = _f(50, "training epochs", min=1)
    peer_epochs: int = _f(
        8,
        "training epochs of the devkit's CNN peers, MTP and CoverNet (chosen on train_val: "
        "they overfit the synthetic world's train split after that; 0: --epochs)",
        min=0,
    )
    batch_size: int = _f(32, "targets per batch", min=1)
    lr: float = _f(2e-3, "AdamW learning rate (cosine decay)", min=0.0)
    weight_decay: float = _f(1e-4, "AdamW weight decay", min=0.0)
    seed: int = _f(0, "seed for weights init and data order (runs are repeatable)")
    seeds: int = _f(
        3,
        "independent heads per method (seeds seed, seed+1, …); eval reports "
        "the mean over them, predict and viz use the first",
        min=1,
    )
    max_steps: int = _f(-1, "stop after this many optimiser steps (-1: epochs decide)", min=-1)
    stack_seeds: bool = _f(
        True,
        "a method's seeds as one stacked model (each seed's own weights, data order and "
        "optimiser state, one batched step: 1.5× faster on 2 cores); off: one by one",
    )


@dataclass
class RunConfig:
    """Where the run goes and what it runs on."""

    run_dir: str = _f("runs", "where run directories are created")
    name: str = _f("", "run name (a plain name, no path); empty: a timestamp and a random suffix")
    accelerator: str = _f("cpu", "cpu, gpu, auto (Lightning); XMem extraction runs there too")
    devices: int = _f(1, "devices per node; >1 with --strategy ddp (torchrun works too)", min=1)
    num_nodes: int = _f(1, "nodes (DDP)", min=1)
    strategy: str = _f("auto", "Lightning strategy: auto, ddp, ...")
    num_workers: int = _f(0, "DataLoader workers for image loading", min=0)
    prepare_workers: int = _f(
        0,
        "processes that draw the devkit's rasters of MTP and CoverNet (the same bytes whatever "
        "the count; 0: one per CPU core this process may use, 1: in this process)",
        min=0,
    )
    head_workers: int = _f(
        0,
        "processes that train the methods' heads at once on a CPU, one thread each (each method "
        "in one of them; same seeds, checkpoints and logs); 0: one per method, at most one per "
        "CPU core this process may use (1 on a GPU or with several devices); 1: in this process",
        min=0,
    )
    progress: bool = _f(True, "progress bars")

    @property
    def distributed(self) -> bool:
        """More than one process trains (devices × nodes > 1, DDP)."""
        return self.devices * self.num_nodes > 1


@dataclass
class EvalConfig:
    """How a run is scored."""

    primary: str = _f(
        "xmem,history_only",
        "the primary comparison, declared before the run: "
        "A,B — the relative gain of method A over method "
        "(or devkit baseline) B on minFDE_1, targets with a "
        "past; every other comparison is exploratory",
    )
    replicates: int = _f(
        2000, "bootstrap replicates of the intervals (scenes and training seeds resampled)", min=100
    )

    @property
    def primary_pair(self) -> tuple[str, str]:
        a, b = (split_list(self.primary) + ["", ""])[:2]
        return a, b


@dataclass
class ExperimentalConfig:
    """Options whose alternatives were measured and not kept (docs/experiments.md says what
    each gave); they stay for reproducing those measurements."""

    view: str = _f(
        "agent",
        "what XMem looks at: frame (the whole camera frame, one video per "
        "camera window), agent (a crop around the agent's projected box, "
        "crop_size², one video per target) or both (features "
        "concatenated)",
        choices=("frame", "agent", "both"),
    )
    masks: str = _f(
        "first",
        "first: XMem propagates each agent's first-frame mask (the seed's "
        "scheme); every: the agent's projected box mask is also given at "
        "every past frame",
        choices=("first", "every"),
    )
    head: str = _f("gru", "the frame branch of the head: gru or mlp", choices=("gru", "mlp"))
    rollout: bool = _f(
        True,
        "the head predicts corrections to the constant-velocity roll-out "
        "(--no-rollout: raw positions)",
    )
    cv_mode: bool = _f(False, "mode 0 is the constant-velocity roll-out, uncorrected")
    feature_drop: float = _f(
        0.0,
        "probability that the head is trained on a target without "
        "its XMem features (modality dropout); 0: off",
        min=0.0,
        max=0.95,
    )
    mode_assign: str = _f(
        "ade",
        "which mode best-of-K trains (and the classifier learns): ade, the mode of lowest ADE; "
        "miss, the mode of lowest largest pointwise distance (what MissRate counts)",
        choices=("ade", "miss"),
    )
    mode_temperature: float = _f(
        0.0,
        "the mode classifier's target: 0, the trained mode alone (best-of-K); > 0, a softmax "
        "of -d / T over the modes (d the assignment's distance, T in metres), so that modes "
        "near the truth share it",
        min=0.0,
    )
    offroad_loss: float = _f(
        5.0,
        "weight of a loss on the share of every mode's predicted "
        "points off the drivable area of the map raster (the "
        "methods that read the map; none with --no-map; 0: off)",
        min=0.0,
    )


__all__ = [
    "DataConfig",
    "EvalConfig",
    "ExperimentalConfig",
    "ModelConfig",
    "OptimConfig",
    "RANKINGS",
    "RunConfig",
    "TRAJ_XMEM_CONFIG",
    "WorldConfig",
    "XMemConfig",
]
