"""The LightningDataModule of a run: its nuScenes splits as agent targets, with XMem features
extracted once (or read from the feature cache) in setup(), sharded across DDP ranks."""
from __future__ import annotations

import logging
from typing import Callable

import lightning as L
import numpy as np
from nuscenes.nuscenes import NuScenes
from torch.utils.data import DataLoader

from ..config import TrainConfig
from ..data.agent_dataset import NuScenesAgentDataset
from ..data.agent_index import load_nuscenes
from ..data.sources import DataSource, resolve_source
from .backbone import XMemBackbone
from .batch import collate_traj
from .feature_cache import load_or_extract, weights_fingerprint
from .targets import CachedTargets, EpochShuffleSampler, OnlineTargets

log = logging.getLogger(__name__)


class TrajDataModule(L.LightningDataModule):
    """Train and val targets of a config; `backbone` is None when no method needs XMem."""

    def __init__(self, cfg: TrainConfig, source: DataSource, nusc: NuScenes,
                 train_set: NuScenesAgentDataset, val_set: NuScenesAgentDataset,
                 backbone: XMemBackbone | None):
        super().__init__()
        self.cfg, self.source, self.nusc = cfg, source, nusc
        self.train_set, self.val_set = train_set, val_set
        self.backbone = backbone
        self.train_data: CachedTargets | None = None
        self.val_data: CachedTargets | None = None

    @classmethod
    def from_config(cls, cfg: TrainConfig, report: Callable[[str], None] = log.info) -> "TrajDataModule":
        """Loads XMem if a method of the config needs it (first: a bad checkpoint fails before
        any data work), then the tables once (generating the synthetic default on first use),
        and indexes both splits."""
        backbone = XMemBackbone.from_config(cfg) if "xmem" in cfg.method_list else None
        source = resolve_source(cfg, report)
        nusc = load_nuscenes(source.dataroot, source.version)
        make = lambda split: NuScenesAgentDataset.from_config(  # noqa: E731
            cfg, source.dataroot, source.version, split, nusc=nusc)
        return cls(cfg, source, nusc, make(source.train_split), make(source.val_split), backbone)

    @property
    def feature_dim(self) -> int:
        return 0 if self.backbone is None else self.backbone.feature_dim

    @property
    def online(self) -> bool:
        """Fine-tuning XMem: features are computed from the frames in every step."""
        return self.backbone is not None and bool(self.backbone.trainable)

    @property
    def finetuned_backbone(self) -> XMemBackbone | None:
        """The backbone a checkpoint of this run carries weights for (fine-tuning), else None."""
        return self.backbone if self.online else None

    def _features(self, ds: NuScenesAgentDataset) -> tuple[np.ndarray, np.ndarray]:
        if self.backbone is None:
            return np.zeros((len(ds), ds.window_len, 0), np.float32), np.zeros((len(ds), ds.window_len), bool)
        trainer = self.trainer
        arrays = load_or_extract(
            ds, self.backbone, weights_fingerprint(self.cfg.xmem_weights or None, self.cfg.seed),
            self.cfg.resolved_cache_dir(),
            rank=trainer.global_rank if trainer else 0,
            world_size=trainer.world_size if trainer else 1,
            barrier=trainer.strategy.barrier if trainer else (lambda: None),
            videos_per_step=self.cfg.videos_per_step, progress=self.cfg.progress)
        return arrays["features"], arrays["valid"]

    def _targets(self, ds: NuScenesAgentDataset) -> CachedTargets:
        if self.online:
            return OnlineTargets(ds, self.feature_dim)
        return CachedTargets(ds, *self._features(ds))

    def setup(self, stage: str | None = None) -> None:
        """Val targets always; train targets (and their features) only for fitting."""
        if stage in (None, "fit") and self.train_data is None:
            self.train_data = self._targets(self.train_set)
        if self.val_data is None:
            self.val_data = self._targets(self.val_set)

    def train_dataloader(self) -> DataLoader:
        """Shuffled with the seed of the model being trained (its data order)."""
        seed = self.trainer.lightning_module.hparams.seed if self.trainer else self.cfg.seed
        return DataLoader(self.train_data, batch_size=self.cfg.batch_size, collate_fn=collate_traj,
                          sampler=EpochShuffleSampler(len(self.train_data), seed),
                          num_workers=self.cfg.num_workers)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_data, batch_size=self.cfg.batch_size if self.online else 256,
                          collate_fn=collate_traj, num_workers=self.cfg.num_workers)


__all__ = ["TrajDataModule"]
