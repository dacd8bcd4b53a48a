"""TrajBatch: what a model sees of a batch of targets — the agent's track, where it is, and an
extras mapping with the slots of the input providers the model reads (inputs/base.py), so that
a new input touches no fixed field list."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch

#: The per-target tensors every batch carries (agent frame: current position at the origin,
#: heading along +y, as the devkit's PredictHelper gives it).
CORE_FIELDS = ("past", "past_valid", "traj", "future_valid", "translation", "rotation", "index")


@dataclass
class TrajBatch:
    """A batch of targets; every tensor has the batch first."""

    past: torch.Tensor  # (B, P, 2) agent frame, oldest first
    past_valid: torch.Tensor  # (B, P)
    traj: torch.Tensor  # (B, F, 2) agent frame (the future)
    future_valid: torch.Tensor  # (B, F)
    translation: torch.Tensor  # (B, 3) agent box at the target sample (global)
    rotation: torch.Tensor  # (B, 4) its quaternion (w, x, y, z)
    index: torch.Tensor  # (B,) target index in its split
    #: Input slots by name, e.g. "xmem" (B, T, C) and "xmem_valid" (B, T), "map" (B, H, W).
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.traj.shape[0]

    def to(self, device) -> "TrajBatch":
        core = {name: getattr(self, name).to(device) for name in CORE_FIELDS}
        return TrajBatch(**core, extras={k: v.to(device) for k, v in self.extras.items()})

    def get(self, slot: str) -> torch.Tensor | None:
        """An input slot, or None where the batch does not carry it."""
        return self.extras.get(slot)

    def rows(self, rows: slice) -> "TrajBatch":
        """The targets at `rows` (a view of every tensor)."""
        core = {name: getattr(self, name)[rows] for name in CORE_FIELDS}
        return TrajBatch(**core, extras={k: v[rows] for k, v in self.extras.items()})

    @staticmethod
    def cat(batches: "list[TrajBatch]") -> "TrajBatch":
        """The batches' targets one after the other."""
        core = {n: torch.cat([getattr(b, n) for b in batches]) for n in CORE_FIELDS}
        extras = {k: torch.cat([b.extras[k] for b in batches]) for k in batches[0].extras}
        return TrajBatch(**core, extras=extras)


def collate_traj(items: list[dict[str, torch.Tensor]]) -> TrajBatch:
    """Per-target dicts (core fields and slots by name) → one TrajBatch."""
    stacked = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    core = {f.name: stacked.pop(f.name) for f in fields(TrajBatch) if f.name in CORE_FIELDS}
    return TrajBatch(**core, extras=stacked)


__all__ = ["CORE_FIELDS", "TrajBatch", "collate_traj"]
