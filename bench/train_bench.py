"""Main-job throughput, each comparison measured in one run on the same targets:

- XMem feature extraction, before (every window's frames decoded and key-encoded by its own
  video, the previous pipeline) and after (each camera frame decoded and key-encoded once,
  see traj/extraction.py): frames decoded / key-encoded and items/s;
- cached head training items/s, before (a per-item DataLoader with collation) and after
  (whole batches indexed out of the stacked tensors), with the cue labels the default run's
  auxiliary loss trains on, the FLOPs a target costs (torch's FlopCounterMode over one training
  step) and the arithmetic rate that makes;
- with --finetune PREFIXES: seconds per training step when those XMem modules are fine-tuned
  through the trajectory loss (features computed in every step), and what the default
  schedule would take at that rate;
- with --default-run: the stage times of the default `xmem-traj train` (data, XMem features,
  heads, eval) in a fresh temporary cache;
- with --heads: the heads stage of the default run (every default method, every seed, the
  default schedule) on its prepared data, trained one seed after the other (before), as one
  stacked ensemble per method, and stacked with each method in a process of its own (after,
  the default on a CPU), in one run: seconds and the ratios;
- with --prepare: rasters/s of the devkit's input representation (MTP, CoverNet) on the first
  --items train targets, drawn by one process and by one per core (the same bytes, checked),
  and scenes/s of the SUMO world's generation (--scenes scenes) by one process and by one per
  core.

    python bench/train_bench.py [--dataroot DIR] [--items 0]
                                [--default-run | --heads [--epochs N] | --finetune decoder
                                 | --prepare [--scenes 4]]
"""

from __future__ import annotations

import xmem_traj  # noqa: F401  (first: torchvision importable beside the CPU torch)

# isort: split

import argparse
import logging
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from xmem_traj.config import TrainConfig
from xmem_traj.data.videos import FrameSource, group_video, group_windows
from xmem_traj.inputs.extraction import ExtractionStats, extract_groups, plan_extraction
from xmem_traj.inputs.world import world_frames
from xmem_traj.inputs.xmem_input import make_backbone
from xmem_traj.traj.batch import collate_traj
from xmem_traj.traj.datamodules import TrajDataModule, method_slots, model_spec
from xmem_traj.traj.predictor import TrajectoryPredictor
from xmem_traj.traj.prepare import PreparedData, prepare
from xmem_traj.traj.targets import EpochBatchSampler, EpochShuffleSampler, TargetTensors


def extraction(cfg: TrainConfig, data: PreparedData, items: list[int]) -> None:
    ds, backbone = data.train.dataset, make_backbone(cfg)
    groups = group_windows(ds.records, items)
    xm = cfg.xmem
    plan = plan_extraction(
        ds, groups, xm.videos_per_step, FrameSource(ds.records, ds.image_size, xm.crop_size)
    )
    t0 = time.time()
    with torch.no_grad():  # before: each chunk's videos decode and key-encode all their frames
        for chunk in plan.chunks:
            videos = [group_video(ds.records, g, ds.image_size) for g in chunk]
            backbone(
                torch.stack([v["frames"] for v in videos]),
                [v["init_masks"] for v in videos],
                [v["init_frames"].tolist() for v in videos],
                [v["frame_masks"] for v in videos],
            )
    before = time.time() - t0
    stats = ExtractionStats()
    t0 = time.time()
    extract_groups(
        backbone,
        ds,
        groups,
        videos_per_step=xm.videos_per_step,
        num_workers=cfg.run.num_workers,
        progress=False,
        stats=stats,
    )
    after = time.time() - t0
    print(
        f"\nXMem features: {len(items)} targets in {len(groups)} windows, {xm.videos_per_step} in "
        f"lockstep, precision {backbone.precision}, {xm.image_height}×{xm.image_width}"
    )
    print("| pipeline | frames decoded | frames key-encoded | items/s |\n|---|---|---|---|")
    print(
        f"| every window's own frames (before) | {stats.video_frames} | {stats.video_frames} | "
        f"{len(items) / before:.2f} |"
    )
    print(
        f"| each camera frame once (after) | {stats.decoded} | {stats.key_encoded} | "
        f"{len(items) / after:.2f} |"
    )


class _PerItem(Dataset):
    """The targets served item by item (the previous loader)."""

    def __init__(self, data: TargetTensors):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict:
        return self.data[i]


def _step_flops(model: TrajectoryPredictor, batch) -> float:
    """FLOPs of one training step (forward, losses, backward) of `model` on `batch`."""
    model.log = lambda *a, **k: None  # noqa: E731  (no trainer attached)
    with FlopCounterMode(display=False) as counter:
        model.training_step(batch, 0).backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def head_training(cfg: TrainConfig, data: PreparedData, epochs: int) -> None:
    """The XMem model's head on random features of the real width, with the map and the cue
    labels the default run's auxiliary loss reads."""
    train = data.train
    dim = make_backbone(cfg).feature_dim
    n, t = len(train), train.dataset.window_len
    train.arrays["xmem"] = np.random.default_rng(0).normal(size=(n, t, dim)).astype(np.float32)
    train.arrays["xmem_valid"] = np.ones((n, t), bool)
    train.shapes.update({"xmem": (t, dim), "xmem_valid": (t,)})
    if data.context.world is not None:  # the cue labels, as the world provider builds them
        labels, valid = world_frames(data.context, train.targets, "cue_labels")
        train.arrays.update(cue_labels=labels, cue_labels_valid=valid)
        train.shapes.update(cue_labels=labels.shape[1:], cue_labels_valid=valid.shape[1:])
    tensors = TargetTensors(train, method_slots(data, "xmem", "train"))
    optim = cfg.optim
    loaders = {
        "per-item DataLoader + collate (before)": DataLoader(
            _PerItem(tensors),
            batch_size=optim.batch_size,
            sampler=EpochShuffleSampler(n, 0),
            collate_fn=collate_traj,
        ),
        "batches indexed from stacked tensors (after)": DataLoader(
            tensors,
            batch_sampler=EpochBatchSampler(
                EpochShuffleSampler(n, 0), optim.batch_size, drop_last=False
            ),
            collate_fn=lambda b: b,
        ),
    }
    spec = model_spec(data, "xmem").to_dict()

    def make() -> TrajectoryPredictor:
        return TrajectoryPredictor(
            spec=spec, lr=optim.lr, weight_decay=optim.weight_decay, epochs=epochs, seed=optim.seed
        )

    batch = tensors.batch(list(range(optim.batch_size)))
    per_item = _step_flops(make(), batch) / optim.batch_size
    labels = "cue_labels" in tensors.slots
    print(
        f"\ncached head training: {epochs} epochs of {n} targets, batch {optim.batch_size}, "
        f"head {cfg.experimental.head} {cfg.model.hidden}, {dim} features, cue loss "
        f"{cfg.model.cue_loss if labels else 0}, precision {cfg.xmem.precision}; "
        f"{per_item / 1e6:.2f} MFLOP per target and step"
    )
    print("| loader | items/s | GFLOP/s |\n|---|---|---|")
    for name, loader in loaders.items():
        model = make()
        trainer = L.Trainer(
            max_epochs=epochs,
            accelerator="cpu",
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            precision="bf16-mixed" if cfg.xmem.precision == "bf16" else "32-true",
        )
        t0 = time.time()
        trainer.fit(model, loader)
        rate = epochs * n / (time.time() - t0)
        print(f"| {name} | {rate:.0f} | {rate * per_item / 1e9:.1f} |")
    print(f"(50 000 items/s would need {50_000 * per_item / 1e9:.0f} GFLOP/s)")


def finetune_steps(cfg: TrainConfig, steps: int = 4) -> None:
    """Seconds per training step with cfg's fine-tuned XMem modules trained through the loss."""
    data = prepare(cfg.with_options(methods="xmem"), roles=("train",))
    cfg, optim = data.cfg, data.cfg.optim
    spec = model_spec(data, "xmem")
    model = TrajectoryPredictor(
        spec=spec.to_dict(),
        lr=optim.lr,
        weight_decay=optim.weight_decay,
        epochs=optim.epochs,
        seed=optim.seed,
        backbone=spec.backbone,
    )
    model.log = lambda *a, **k: None  # noqa: E731  (no trainer attached)
    opt = model.configure_optimizers()["optimizer"]
    dm = TrajDataModule(data, optim, cfg.run)
    loader = iter(dm._loader(dm.tensors("xmem", "train"), optim.batch_size, seed=optim.seed))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.xmem.precision == "bf16")
    trainable = sum(p.numel() for p in spec.backbone.parameters() if p.requires_grad)
    times = []
    for i in range(steps + 1):  # the first step warms up
        batch = next(loader)
        t0 = time.time()
        with autocast:
            loss = model.training_step(batch, i)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.time() - t0)
    per_step = sum(times[1:]) / steps
    rate = optim.batch_size / per_step
    n = len(data.train)
    print(
        f"\nfine-tuning XMem's {cfg.xmem.finetune_xmem} ({trainable / 1e6:.1f} M parameters) "
        f"through the trajectory loss, batch {optim.batch_size}, precision {cfg.xmem.precision}: "
        f"{per_step:.1f} s per step, {rate:.2f} items/s; the default schedule ({optim.epochs} "
        f"epochs × {optim.seeds} seeds of {n} targets) would take "
        f"{optim.epochs * optim.seeds * n / rate / 3600:.0f} h"
    )


def heads_stage(cfg: TrainConfig) -> None:
    """The default run's heads stage on the same prepared data: seed by seed in this process
    (before), stacked in this process, and stacked with the methods in processes of their own
    (after: the default on a CPU with several cores)."""
    from xmem_traj.heads_pool import fit_methods, head_workers
    from xmem_traj.runs import RunLayout
    from xmem_traj.train import fit_method

    data = prepare(cfg, roles=("train", "val"))
    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, stacked, workers in (
            ("one seed after the other, in this process (before)", False, 1),
            ("seeds stacked, one model per method, in this process", True, 1),
            ("seeds stacked, each method in a process of its own (after)", True, 0),
        ):
            data.cfg = data.cfg.with_options(
                stack_seeds=stacked, head_workers=workers, progress=False
            )
            n = head_workers(data.cfg, data.methods)
            dm = TrajDataModule(data, data.cfg.optim, data.cfg.run)
            layout = RunLayout(Path(tmp) / f"{stacked}-{workers}")
            t0 = time.perf_counter()
            fit_methods(
                fit_method, data, dm, layout, data.methods, resume=False, report=lambda line: None
            )
            seconds[f"{name} [{n} process(es)]"] = time.perf_counter() - t0
    optim = data.cfg.optim
    print(
        f"\nheads stage: {', '.join(data.methods)}, {optim.seeds} seeds, {optim.epochs} epochs "
        f"of {len(data.train)} targets, batch {optim.batch_size}, precision "
        f"{data.cfg.xmem.precision}, {torch.get_num_threads()} threads in this process"
    )
    print("| heads trained | seconds |\n|---|---|")
    for name, s in seconds.items():
        print(f"| {name} | {s:.0f} |")
    before, stacked, after = seconds.values()
    print(f"stacked / one by one: {before / stacked:.2f}× faster")
    print(f"after / before: {before / after:.2f}× faster")


def prepare_rates(cfg: TrainConfig, items: int, scenes: int) -> None:
    from xmem_traj.cores import usable_cores
    from xmem_traj.inputs.base import INPUTS
    from xmem_traj.inputs.rasters import draw_rasters
    from xmem_traj.synth import generate

    cores = usable_cores()
    data = prepare(cfg.with_options(methods="history_only"), roles=("train",))
    records = data.train.records[: items or 300]
    rep = INPUTS["raster"](data.context).representation()
    targets = [(r.instance_token, r.sample_token) for r in records]
    drawn = {}
    for workers in (1, cores):
        t0 = time.perf_counter()
        drawn[workers] = draw_rasters(rep, targets, data.cfg.context.raster_pixels, workers=workers)
        rate = len(targets) / (time.perf_counter() - t0)
        print(f"devkit rasters {drawn[workers].shape[2:]}: {rate:.1f}/s by {workers} process(es)")
    print(f"same bytes by 1 and {cores}: {np.array_equal(drawn[1], drawn[cores])}")
    world = data.cfg.world
    for workers in (1, cores):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            generate(f"{tmp}/w", scenes=scenes, seed=world.synth_seed, workers=workers)
            rate = scenes / (time.perf_counter() - t0)
        print(f"SUMO world: {rate:.3f} scenes/s by {workers} process(es) ({scenes} scenes)")


def default_run() -> None:
    from xmem_traj.train import run_training

    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig.of(cache_dir=tmp + "/cache", run_dir=tmp + "/runs", progress=False)
        t0 = time.time()
        run_training(cfg, report=print)
        print(f"\ndefault run: {time.time() - t0:.0f} s in all (fresh cache)")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--dataroot", default="", help="nuScenes folder (default: the synthetic default data)"
    )
    p.add_argument("--items", type=int, default=0, help="targets to extract features for (0: all)")
    p.add_argument(
        "--epochs",
        type=int,
        default=0,
        help="epochs of head training (default: 5; with --heads: the default's)",
    )
    p.add_argument(
        "--heads",
        action="store_true",
        help="time the default run's heads stage seed by seed and stacked instead",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--prepare", action="store_true", help="time rasters and world scenes by 1 and N processes"
    )
    p.add_argument("--scenes", type=int, default=4, help="world scenes generated with --prepare")
    p.add_argument(
        "--default-run", action="store_true", help="time the default main job's stages instead"
    )
    p.add_argument(
        "--finetune",
        default="",
        metavar="PREFIXES",
        help="time training steps with these XMem modules fine-tuned instead (e.g. decoder)",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    if args.default_run:
        return default_run()
    cfg = TrainConfig.of(dataroot=args.dataroot, progress=False)
    if args.prepare:
        return prepare_rates(cfg, args.items, args.scenes)
    if args.heads:
        return heads_stage(cfg.with_options(epochs=args.epochs) if args.epochs else cfg)
    args.epochs = args.epochs or 5
    if args.finetune:
        return finetune_steps(cfg.with_options(finetune_xmem=args.finetune))
    data = prepare(cfg.with_options(methods="history_only"), roles=("train",))
    cfg = data.cfg.with_options(methods="xmem")  # (resolved; what the head bench trains)
    n = len(data.train)
    extraction(cfg, data, list(range(min(args.items or n, n))))
    head_training(cfg, data, args.epochs)


if __name__ == "__main__":
    main()
