"""Targets as the head trains on them: tracks plus cached XMem features (or frames and masks
when XMem is fine-tuned), and the epoch-seeded shuffling that makes resumed runs exact."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import BatchSampler, Dataset, Sampler

from ..data.agent_dataset import NuScenesAgentDataset
from ..data.frames import frame_masks, init_mask, load_frames, output_size
from .batch import TrajBatch


class CachedTargets(Dataset):
    """Targets with precomputed per-frame features (history-only models ignore them)."""

    def __init__(self, ds: NuScenesAgentDataset, features: np.ndarray, valid: np.ndarray,
                 cues: tuple[np.ndarray, np.ndarray] | None = None, maps: np.ndarray | None = None):
        self.features = torch.from_numpy(features)
        self.valid = torch.from_numpy(valid)
        self.cues = None if cues is None else (torch.from_numpy(cues[0]), torch.from_numpy(cues[1]))
        self.maps = None if maps is None else torch.from_numpy(maps)
        tracks = [ds.tracks(i) for i in range(len(ds))]
        stack = lambda name: torch.from_numpy(np.stack([t[name] for t in tracks]))  # noqa: E731
        self.past, self.past_valid = stack("past"), stack("past_valid")
        self.traj, self.future_valid = stack("traj"), stack("future_valid")
        self.translation = torch.tensor([r.translation for r in ds.records], dtype=torch.float32)
        self.rotation = torch.tensor([r.rotation for r in ds.records], dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.traj)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {"features": self.features[i], "feature_valid": self.valid[i], "past": self.past[i],
                "past_valid": self.past_valid[i], "traj": self.traj[i],
                "future_valid": self.future_valid[i], "translation": self.translation[i],
                "rotation": self.rotation[i], "index": torch.tensor(i)}
        if self.cues is not None:
            item["cues"], item["cue_valid"] = self.cues[0][i], self.cues[1][i]
        if self.maps is not None:
            item["map"] = self.maps[i]
        return item

    def __getitems__(self, indices: Sequence[int]) -> TrajBatch:
        """Targets `indices` as one TrajBatch, by indexing the stacked tensors (no per-item
        collation: what makes cached training fast; DataLoader calls it with a batch sampler)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        cues, cue_valid = (None, None) if self.cues is None else (self.cues[0][idx], self.cues[1][idx])
        return TrajBatch(features=self.features[idx], feature_valid=self.valid[idx],
                         past=self.past[idx], past_valid=self.past_valid[idx], traj=self.traj[idx],
                         future_valid=self.future_valid[idx], translation=self.translation[idx],
                         rotation=self.rotation[idx], index=idx, cues=cues, cue_valid=cue_valid,
                         map=None if self.maps is None else self.maps[idx])


class OnlineTargets(CachedTargets):
    """Targets with their frames and masks, for fine-tuning XMem (features computed online)."""

    __getitems__ = None  # items one by one: each reads its frames

    def __init__(self, ds: NuScenesAgentDataset, feature_dim: int,
                 cues: tuple[np.ndarray, np.ndarray] | None = None, maps: np.ndarray | None = None):
        super().__init__(ds, np.zeros((len(ds), ds.window_len, feature_dim), np.float32),
                         np.zeros((len(ds), ds.window_len), bool), cues, maps)
        self.ds = ds

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rec = self.ds.records[i]
        size = output_size(rec, self.ds.image_size)
        return {**super().__getitem__(i),
                "frames": torch.from_numpy(load_frames(rec.frame_paths, size)),
                "init_masks": torch.from_numpy(init_mask(rec, size)),
                "init_frame": torch.tensor(rec.init_frame),
                "frame_masks": torch.from_numpy(frame_masks(rec, size))}


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


class EpochBatchSampler(BatchSampler):
    """BatchSampler that passes set_epoch on to its sampler (Lightning calls it on the batch
    sampler); a BatchSampler so that DDP can inject its distributed sampler."""

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)


__all__ = ["CachedTargets", "EpochShuffleSampler", "OnlineTargets"]
