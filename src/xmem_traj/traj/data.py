"""From a TrainConfig to training data: the nuScenes source (the synthetic default generated on
first use), the agent datasets, and a LightningDataModule over cached XMem features."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import lightning as L
import numpy as np
import torch
from nuscenes.nuscenes import NuScenes
from torch.utils.data import DataLoader, Dataset, Sampler

from ..atomic import write_dir_atomically
from ..config import TrainConfig
from ..synth import generate, version_of
from ..xmem import load_xmem
from .datamodules import NuScenesAgentDataset
from .feature_cache import load_or_extract, weights_fingerprint
from .lightning_module import collate_traj
from .predictor import XMemBackbone

log = logging.getLogger(__name__)


def synthetic_dataroot(cfg: TrainConfig, report: Callable[[str], None] = log.info) -> Path:
    """The default data: a synthetic nuScenes in the cache, generated once (atomically)."""
    root = cfg.resolved_cache_dir() / "synthetic" / f"scenes{cfg.synth_scenes}-seed{cfg.synth_seed}"
    if not (root / "maps" / "prediction" / "prediction_scenes.json").exists():
        report(f"generating the synthetic nuScenes ({cfg.synth_scenes} scenes) into {root} …")
        write_dir_atomically(root, lambda tmp: generate(
            tmp, scenes=cfg.synth_scenes, seed=cfg.synth_seed,
            progress=(lambda msg: report("  " + msg)) if cfg.progress else None))
    return root


def resolve_source(cfg: TrainConfig, report: Callable[[str], None] = log.info) -> tuple[str, str, str, str]:
    """→ dataroot, version, train split, val split."""
    dataroot = cfg.dataroot or str(synthetic_dataroot(cfg, report))
    version = cfg.version or version_of(dataroot)
    mini = "mini" in version
    train = cfg.train_split or ("mini_train" if mini else "train")
    val = cfg.val_split or ("mini_val" if mini else "val")
    return dataroot, version, train, val


def make_datasets(cfg: TrainConfig, report: Callable[[str], None] = log.info
                  ) -> tuple[NuScenes, NuScenesAgentDataset, NuScenesAgentDataset]:
    dataroot, version, train_split, val_split = resolve_source(cfg, report)
    nusc = NuScenes(version=version, dataroot=dataroot, verbose=False)
    kw = dict(challenge=cfg.challenge, frames=cfg.frames,
              categories=[c for c in cfg.categories.split(",") if c] or None,
              image_size=(cfg.image_height, cfg.image_width), nusc=nusc)
    return nusc, NuScenesAgentDataset(dataroot, version, train_split, **kw), \
        NuScenesAgentDataset(dataroot, version, val_split, **kw)


def make_backbone(cfg: TrainConfig) -> tuple[XMemBackbone, str]:
    network = load_xmem(cfg.xmem_weights or None, map_location="cpu", seed=cfg.seed)
    trainable = [p for p in cfg.finetune_xmem.split(",") if p]
    return (XMemBackbone(network, features=cfg.features, trainable=trainable, masks=cfg.masks),
            weights_fingerprint(cfg.xmem_weights or None, cfg.seed))


def make_datamodule(cfg: TrainConfig, report: Callable[[str], None] = log.info
                    ) -> tuple[NuScenes, "TrajDataModule"]:
    """The loaded NuScenes and the data module of a config (XMem is loaded unless the main
    model is history-only): what training, eval, predict and viz all start from."""
    nusc, train_set, val_set = make_datasets(cfg, report)
    backbone, weights_id = make_backbone(cfg) if not cfg.history_only else (None, "")
    return nusc, TrajDataModule(cfg, train_set, val_set, backbone, weights_id)


class CachedTargets(Dataset):
    """Targets with their cached features (history-only models ignore the features)."""

    def __init__(self, ds: NuScenesAgentDataset, features: np.ndarray, valid: np.ndarray):
        self.features = torch.from_numpy(features)
        self.valid = torch.from_numpy(valid)
        tracks = [ds.tracks(i) for i in range(len(ds))]
        stack = lambda name: torch.from_numpy(np.stack([t[name] for t in tracks]))  # noqa: E731
        self.past, self.past_valid = stack("past"), stack("past_valid")
        self.traj, self.future_valid = stack("traj"), stack("future_valid")
        self.translation = torch.tensor([r.translation for r in ds.records], dtype=torch.float32)
        self.rotation = torch.tensor([r.rotation for r in ds.records], dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.traj)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"features": self.features[i], "feature_valid": self.valid[i], "past": self.past[i],
                "past_valid": self.past_valid[i], "traj": self.traj[i],
                "future_valid": self.future_valid[i], "translation": self.translation[i],
                "rotation": self.rotation[i], "index": torch.tensor(i)}


class OnlineTargets(CachedTargets):
    """Targets with their frames and masks, for fine-tuning XMem (features computed online)."""

    def __init__(self, ds: NuScenesAgentDataset, feature_dim: int):
        super().__init__(ds, np.zeros((len(ds), ds.window_len, feature_dim), np.float32),
                         np.zeros((len(ds), ds.window_len), bool))
        self.ds = ds

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rec = self.ds.records[i]
        size = self.ds._size(rec)
        return {**super().__getitem__(i),
                "frames": torch.from_numpy(self.ds.load_frames(rec.frame_paths, size)),
                "init_masks": torch.from_numpy(self.ds.init_mask(rec)),
                "init_frame": torch.tensor(rec.init_frame),
                "frame_masks": torch.from_numpy(self.ds.frame_masks(rec))}


class EpochShuffleSampler(Sampler[int]):
    """Shuffles with seed + epoch (Lightning calls set_epoch), so a resumed run sees the same
    order as an uninterrupted one."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


class TrajDataModule(L.LightningDataModule):
    """Extracts (or reads cached) XMem features in setup(), sharded across DDP ranks."""

    def __init__(self, cfg: TrainConfig, train_set: NuScenesAgentDataset,
                 val_set: NuScenesAgentDataset, backbone: XMemBackbone | None, weights_id: str):
        super().__init__()
        self.cfg, self.train_set, self.val_set = cfg, train_set, val_set
        self.seed = cfg.seed  # the training data order; fit() sets it per replica
        self.backbone, self.weights_id = backbone, weights_id
        self.train_data: CachedTargets | None = None
        self.val_data: CachedTargets | None = None

    @property
    def feature_dim(self) -> int:
        return 0 if self.backbone is None else self.backbone.feature_dim

    def _features(self, ds: NuScenesAgentDataset) -> tuple[np.ndarray, np.ndarray]:
        if self.backbone is None:
            return np.zeros((len(ds), ds.window_len, 0), np.float32), np.zeros((len(ds), ds.window_len), bool)
        trainer = self.trainer
        arrays = load_or_extract(
            ds, self.backbone, self.weights_id, self.cfg.resolved_cache_dir(),
            rank=trainer.global_rank if trainer else 0,
            world_size=trainer.world_size if trainer else 1,
            barrier=trainer.strategy.barrier if trainer else (lambda: None),
            videos_per_step=self.cfg.videos_per_step, progress=self.cfg.progress)
        return arrays["features"], arrays["valid"]

    @property
    def online(self) -> bool:
        """Fine-tuning XMem: features are computed from the frames in every step."""
        return self.backbone is not None and bool(self.backbone.trainable)

    @property
    def finetuned_backbone(self) -> XMemBackbone | None:
        """The backbone a checkpoint of this run carries weights for (fine-tuning), else None."""
        return self.backbone if self.online else None

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
        return DataLoader(self.train_data, batch_size=self.cfg.batch_size, collate_fn=collate_traj,
                          sampler=EpochShuffleSampler(len(self.train_data), self.seed),
                          num_workers=self.cfg.num_workers)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_data, batch_size=self.cfg.batch_size if self.online else 256,
                          collate_fn=collate_traj, num_workers=self.cfg.num_workers)
