"""The LightningDataModule of a run: it only serves batches of prepared data (traj/prepare.py)
— for the model being fitted, the input slots its method reads (and, in training, its
labels), shuffled with the model's own seed."""

from __future__ import annotations

import lightning as L
from torch.utils.data import DataLoader, SequentialSampler

from ..config import OptimConfig, RunConfig
from ..methods import METHODS, method_inputs
from .batch import TrajBatch, collate_traj
from .models import ModelSpec
from .prepare import PreparedData
from .targets import EnsembleBatchSampler, EpochBatchSampler, EpochShuffleSampler, TargetTensors

VAL_BATCH = 256


def _as_is(batch: TrajBatch) -> TrajBatch:
    return batch


def method_slots(data: PreparedData, method: str, role: str) -> tuple[str, ...]:
    """The batch slots a method's model reads on a split (and its labels in training): the
    slots of its input providers that the split holds."""
    providers = method_inputs(method, data.cfg.model)
    if role == "train":
        providers += METHODS[method].labels
    split = data.split(role)
    return tuple(
        slot for name in providers for slot in (name, f"{name}_valid") if slot in split.shapes
    )


def model_spec(data: PreparedData, method: str, role: str = "train") -> ModelSpec:
    """What the method's model is built from on this run's prepared data (the train split's
    slots, labels included; on the val split, the slots a trained model reads)."""
    cfg, split = data.cfg, data.split(role)
    online = data.context.backbone is not None and data.context.backbone.trainable
    shapes = {slot: split.shapes[slot] for slot in method_slots(data, method, role)}
    targets = split.dataset.targets
    return ModelSpec.of(
        method,
        METHODS[method].inputs,
        cfg.model,
        cfg.experimental,
        past_steps=targets.past_steps,
        future_steps=targets.future_steps,
        shapes=shapes,
        backbone=data.context.backbone if online and "xmem" in shapes else None,
        constants={k: v for k, v in split.constants.items() if k in shapes},
    )


class TrajDataModule(L.LightningDataModule):
    """Batches of the train and val splits for whichever method the trainer fits."""

    def __init__(self, data: PreparedData, optim: OptimConfig, run: RunConfig):
        super().__init__()
        self.data, self.optim, self.run = data, optim, run
        self._tensors: dict[tuple[str, str], TargetTensors] = {}

    def tensors(self, method: str, role: str) -> TargetTensors:
        """A split's targets with the method's slots (built once)."""
        key = (method, role)
        if key not in self._tensors:
            self._tensors[key] = TargetTensors(
                self.data.split(role), method_slots(self.data, method, role)
            )
        return self._tensors[key]

    def _loader(self, tensors: TargetTensors, batch_size: int, *, seed: int | None) -> DataLoader:
        """Online items are collated by workers; cached ones are indexed as whole batches in
        the main process (no workers needed)."""
        order = (
            SequentialSampler(tensors) if seed is None else EpochShuffleSampler(len(tensors), seed)
        )
        sampler = EpochBatchSampler(order, batch_size, drop_last=False)
        if tensors.items:
            return DataLoader(
                tensors,
                batch_sampler=sampler,
                collate_fn=collate_traj,
                num_workers=self.run.num_workers,
            )
        return DataLoader(tensors, batch_sampler=sampler, collate_fn=_as_is)

    def _fitted(self) -> tuple[str, list[int]]:
        """The method and seeds of the module the trainer fits (one, or a stacked ensemble's)."""
        module = self.trainer.lightning_module
        return module.method, list(getattr(module, "seeds", [module.hparams.get("seed")]))

    def train_dataloader(self) -> DataLoader:
        """Shuffled with the seed of the model being trained (its data order); for a stacked
        ensemble, each step holds one batch of every seed's order."""
        method, seeds = self._fitted()
        tensors = self.tensors(method, "train")
        if len(seeds) == 1:
            return self._loader(tensors, self.optim.batch_size, seed=seeds[0])
        sampler = EnsembleBatchSampler(len(tensors), seeds, self.optim.batch_size)
        return DataLoader(tensors, batch_sampler=sampler, collate_fn=_as_is)

    def val_dataloader(self) -> DataLoader:
        tensors = self.tensors(self._fitted()[0], "val")
        size = self.optim.batch_size if tensors.items else VAL_BATCH
        return self._loader(tensors, size, seed=None)

    def transfer_batch_to_device(self, batch, device, dataloader_idx: int):
        # A TrajBatch moves itself: Lightning's generic walk deep-copies the dataclass, a
        # measurable share of a small head's step.
        if isinstance(batch, TrajBatch):
            return batch.to(device)
        return super().transfer_batch_to_device(batch, device, dataloader_idx)


__all__ = ["TrajDataModule", "VAL_BATCH", "method_slots", "model_spec"]
