"""Targets as models train on them: a prepared split's tensors served as TrajBatches, and the
epoch-seeded shuffling that makes resumed runs exact."""

from __future__ import annotations

from typing import Sequence

import torch
from torch.utils.data import BatchSampler, Dataset, Sampler

from .batch import CORE_FIELDS, TrajBatch, collate_traj
from .prepare import PreparedSplit


class TargetTensors(Dataset):
    """A prepared split's targets as tensors: the core fields and the input slots a model
    reads, stacked, so that a batch is one indexing of each (no per-item collation: what makes
    cached training fast; DataLoader calls __getitems__ with a batch sampler). With online
    inputs (XMem fine-tuned) items are read one by one instead, by DataLoader workers."""

    def __init__(self, split: PreparedSplit, slots: Sequence[str]):
        arrays = split.arrays
        self.tensors = {name: torch.from_numpy(arrays[name]) for name in CORE_FIELDS[:-1]}
        self.slots = tuple(s for s in slots if s in arrays)
        self.extras = {s: torch.from_numpy(arrays[s]) for s in self.slots}
        self.items = split.items
        if self.items:
            self.__getitems__ = None  # items one by one: each reads its frames

    def __len__(self) -> int:
        return len(self.tensors["traj"])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {k: v[i] for k, v in self.tensors.items()}
        item["index"] = torch.tensor(i)
        item.update({s: v[i] for s, v in self.extras.items()})
        for load in self.items:
            item.update(load(i))
        return item

    def __getitems__(self, indices: Sequence[int]) -> TrajBatch:
        """Targets `indices` as one TrajBatch."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        return TrajBatch(
            **{k: v[idx] for k, v in self.tensors.items()},
            index=idx,
            extras={s: v[idx] for s, v in self.extras.items()},
        )

    def batch(self, indices: Sequence[int]) -> TrajBatch:
        """Targets `indices` as one TrajBatch, whichever way items are read."""
        if self.items:
            return collate_traj([self[i] for i in indices])
        return self.__getitems__(indices)


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


class EnsembleBatchSampler(BatchSampler):
    """Each step: one batch of every seed's own shuffle, concatenated seed-major."""

    def __init__(self, n: int, seeds: Sequence[int], batch_size: int):
        self.orders = [EpochShuffleSampler(n, s) for s in seeds]
        self.n, self.batch_size = n, batch_size

    def set_epoch(self, epoch: int) -> None:
        for order in self.orders:
            order.set_epoch(epoch)

    def __iter__(self):
        lists = [list(order) for order in self.orders]
        for start in range(0, self.n, self.batch_size):
            yield [i for order in lists for i in order[start : start + self.batch_size]]

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)


__all__ = ["EnsembleBatchSampler", "EpochBatchSampler", "EpochShuffleSampler", "TargetTensors"]
