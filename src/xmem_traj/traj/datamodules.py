"""The LightningDataModule of a run: its nuScenes splits as agent targets, with each method's
per-frame inputs — XMem features (extracted once, or read from the feature cache, sharded
across DDP ranks), the synthetic world's cue states (the cue oracle), or none — and, for every
method, the map around each target (the map expansion's drivable area in its frame)."""
from __future__ import annotations

import dataclasses
import logging
from typing import Callable

import lightning as L
import numpy as np
from nuscenes.nuscenes import NuScenes
from torch.utils.data import DataLoader, SequentialSampler

from ..config import TrainConfig
from ..data.agent_dataset import NuScenesAgentDataset
from ..data.agent_index import load_nuscenes
from ..data.maps import DrivableMaps, has_map_expansion
from ..data.sources import DataSource, resolve_source
from ..data.world_cues import INTENT_WIDTH, WorldCues
from ..errors import ConfigError, DatasetError
from ..methods import METHODS
from ..synth.cues import ORACLE_FIELDS
from .backbone import XMemBackbone
from .batch import TrajBatch, collate_traj
from .feature_cache import load_or_extract, weights_fingerprint
from .targets import CachedTargets, EpochBatchSampler, EpochShuffleSampler, OnlineTargets

log = logging.getLogger(__name__)


def _as_is(batch: TrajBatch) -> TrajBatch:
    return batch


class TrajDataModule(L.LightningDataModule):
    """Train and val targets of a config for its methods; `backbone` is None when no method
    needs XMem, `cues` None when the data has no side file."""

    def __init__(self, cfg: TrainConfig, source: DataSource, nusc: NuScenes,
                 train_set: NuScenesAgentDataset, val_set: NuScenesAgentDataset,
                 backbone: XMemBackbone | None, cues: WorldCues | None, methods: tuple[str, ...]):
        super().__init__()
        self.cfg, self.source, self.nusc = cfg, source, nusc
        self.train_set, self.val_set = train_set, val_set
        self.backbone, self.cues, self.methods = backbone, cues, methods
        self._data: dict[tuple[str, str], CachedTargets] = {}
        self._cue_states: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._rasters: dict[str, np.ndarray] = {}
        self._maps: DrivableMaps | None = None

    @classmethod
    def from_config(cls, cfg: TrainConfig, report: Callable[[str], None] = log.info) -> "TrajDataModule":
        """Loads XMem if a method of the config needs it (first: a bad checkpoint fails before
        any data work), then the tables once (generating the synthetic default on first use),
        the side file if there is one, and indexes both splits."""
        wants_xmem = cfg.methods == "auto" or "xmem" in cfg.method_list
        backbone = XMemBackbone.from_config(cfg) if wants_xmem else None
        source = resolve_source(cfg, report)
        nusc = load_nuscenes(source.dataroot, source.version)
        cues = WorldCues.load(source.dataroot, source.version)
        methods = resolve_methods(cfg, cues is not None)
        locations = sorted({rec["location"] for rec in nusc.log})
        if cfg.map and not has_map_expansion(source.dataroot, locations):
            raise DatasetError(f"no map expansion (maps/expansion/{{{','.join(locations)}}}.json) under "
                               f"{source.dataroot}: install the nuScenes map expansion pack there, "
                               "or pass --no-map (the head then sees the past track only)")
        if cfg.cue_loss > 0 and cues is None and "xmem" in methods:
            log.warning("cue_loss %g is off: %s has no synthetic-world side file (the cue labels)",
                        cfg.cue_loss, source.dataroot)
        labelled = cues is not None and cfg.cue_loss > 0
        if cfg.vision == "cues" and not labelled and "xmem" in methods:
            log.warning("vision cues without cue labels: the cue readout is learned from the "
                        "trajectory loss alone")
        make = lambda split: NuScenesAgentDataset.from_config(  # noqa: E731
            cfg, source.dataroot, source.version, split, nusc=nusc)
        vision = cfg.vision if cfg.vision != "auto" else ("cues" if labelled else "features")
        return cls(dataclasses.replace(cfg, vision=vision), source, nusc, make(source.train_split),
                   make(source.val_split), backbone, cues, methods)

    def locations(self, split: str) -> list[str]:
        """The map (log location) of each of the split's targets ("train" or "val")."""
        ds = self.train_set if split == "train" else self.val_set
        scene_location = {s["name"]: self.nusc.get("log", s["log_token"])["location"] for s in self.nusc.scene}
        return [scene_location[r.scene_name] for r in ds.records]

    def drivable_maps(self) -> DrivableMaps | None:
        """The drivable-area masks of both splits' locations (loaded once: the head's map
        input and OffRoadRate share them); None without a map expansion."""
        if self._maps is None:
            locations = set(self.locations("train")) | set(self.locations("val"))
            if has_map_expansion(self.source.dataroot, locations):
                self._maps = DrivableMaps.load(self.source.dataroot, locations)
        return self._maps

    def rasters(self, split: str) -> np.ndarray | None:
        """(N, *MAP_SHAPE) drivable area around each target in its frame (built once a split);
        None with --no-map."""
        if not self.cfg.map:
            return None
        if split not in self._rasters:
            ds = self.train_set if split == "train" else self.val_set
            self._rasters[split] = self.drivable_maps().rasters(
                self.locations(split), np.array([r.translation for r in ds.records]).reshape(-1, 3),
                np.array([r.yaw for r in ds.records]))
        return self._rasters[split]

    def feature_dim(self, inputs: str) -> int:
        """Width of the per-frame inputs of a method's head."""
        views = 2 if self.cfg.view == "both" else 1
        return {"xmem": views * self.backbone.feature_dim if self.backbone is not None else 0,
                "cues": len(ORACLE_FIELDS), "intent": INTENT_WIDTH, "none": 0}[inputs]

    @property
    def online(self) -> bool:
        """Fine-tuning XMem: features are computed from the frames in every step."""
        return self.backbone is not None and bool(self.backbone.trainable)

    @property
    def finetuned_backbone(self) -> XMemBackbone | None:
        """The backbone a checkpoint of this run carries weights for (fine-tuning), else None."""
        return self.backbone if self.online else None

    def _inputs(self, ds: NuScenesAgentDataset, inputs: str) -> tuple[np.ndarray, np.ndarray]:
        n, t = len(ds), ds.window_len
        if inputs == "none":
            return np.zeros((n, t, 0), np.float32), np.zeros((n, t), bool)
        if inputs == "cues":  # the oracle's inputs and the cue loss's labels: built once a split
            split = "train" if ds is self.train_set else "val"
            if split not in self._cue_states:
                rows = [self.cues.oracle_features(r) for r in ds.records]
                self._cue_states[split] = np.stack([f for f, _ in rows]), np.stack([v for _, v in rows])
            return self._cue_states[split]
        if inputs == "intent":  # the same plan at every frame
            plans = np.stack([self.cues.intent_features(r) for r in ds.records])
            return np.repeat(plans[:, None], t, 1), np.ones((n, t), bool)
        trainer, cfg = self.trainer, self.cfg
        parts = [load_or_extract(
            ds, self.backbone, weights_fingerprint(cfg.xmem_weights or None, cfg.seed),
            cfg.resolved_cache_dir(),
            rank=trainer.global_rank if trainer else 0,
            world_size=trainer.world_size if trainer else 1,
            barrier=trainer.strategy.barrier if trainer else (lambda: None),
            videos_per_step=cfg.videos_per_step, view=view, crop_size=cfg.crop_size,
            num_workers=cfg.num_workers, progress=cfg.progress)
            for view in (("frame", "agent") if cfg.view == "both" else (cfg.view,))]
        return (np.concatenate([p["features"] for p in parts], -1),
                np.logical_and.reduce([p["valid"] for p in parts]))

    def targets(self, split: str, inputs: str) -> CachedTargets:
        """The split's ("train" or "val") targets with one kind of per-frame inputs (built once)."""
        key = (split, inputs)
        if key not in self._data:
            ds = self.train_set if split == "train" else self.val_set
            labels = None
            if inputs == "xmem" and split == "train" and self.cfg.cue_loss > 0 and self.cues is not None:
                labels = self._inputs(ds, "cues")  # what the auxiliary loss asks to read
            maps = self.rasters(split)
            if inputs == "xmem" and self.online:
                self._data[key] = OnlineTargets(ds, self.feature_dim("xmem"), cues=labels, maps=maps)
            else:
                self._data[key] = CachedTargets(ds, *self._inputs(ds, inputs), cues=labels, maps=maps)
        return self._data[key]

    def setup(self, stage: str | None = None) -> None:
        """Every method's val targets; train targets too for fitting."""
        for inputs in dict.fromkeys(METHODS[m].inputs for m in self.methods):
            if stage in (None, "fit"):
                self.targets("train", inputs)
            self.targets("val", inputs)

    def _model_inputs(self) -> str:
        """The inputs of the method being trained or validated."""
        return METHODS[self.trainer.lightning_module.hparams.method].inputs

    def _loader(self, data: CachedTargets, batch_size: int, *, seed: int | None) -> DataLoader:
        """Online (fine-tuning): items collated by workers. Cached: whole batches indexed out of
        the stacked tensors in the main process (no workers needed)."""
        order = SequentialSampler(data) if seed is None else EpochShuffleSampler(len(data), seed)
        sampler = EpochBatchSampler(order, batch_size, drop_last=False)
        if isinstance(data, OnlineTargets):
            return DataLoader(data, batch_sampler=sampler, collate_fn=collate_traj,
                              num_workers=self.cfg.num_workers)
        return DataLoader(data, batch_sampler=sampler, collate_fn=_as_is)

    def train_dataloader(self) -> DataLoader:
        """Shuffled with the seed of the model being trained (its data order)."""
        seed = self.trainer.lightning_module.hparams.seed
        return self._loader(self.targets("train", self._model_inputs()), self.cfg.batch_size, seed=seed)

    def val_dataloader(self) -> DataLoader:
        data = self.targets("val", self._model_inputs())
        return self._loader(data, self.cfg.batch_size if isinstance(data, OnlineTargets) else 256, seed=None)


def resolve_methods(cfg: TrainConfig, has_cues: bool) -> tuple[str, ...]:
    """cfg.methods, or with "auto": XMem and history-only, and the cue oracle where the data
    holds the synthetic world's side file."""
    if cfg.methods == "auto":
        return ("xmem", "history_only") + (("cue_oracle",) if has_cues else ())
    oracles = [m for m in ("cue_oracle", "intent_oracle") if m in cfg.method_list]
    if oracles and not has_cues:
        raise ConfigError(f"methods: {', '.join(oracles)} needs the synthetic world's side file, which "
                          "this dataroot does not have; leave it out of --methods")
    return cfg.method_list


__all__ = ["TrajDataModule", "resolve_methods"]
