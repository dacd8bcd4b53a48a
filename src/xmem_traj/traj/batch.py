"""TrajBatch: what the trajectory model sees of a batch of targets, and its collate function."""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class TrajBatch:
    """A batch of targets; every field is a tensor with the batch first."""

    features: torch.Tensor       # (B, T, C) per-frame inputs of the head (C = 0: history only)
    feature_valid: torch.Tensor  # (B, T)
    past: torch.Tensor           # (B, P, 2) agent frame, oldest first
    past_valid: torch.Tensor     # (B, P)
    traj: torch.Tensor           # (B, F, 2) agent frame
    future_valid: torch.Tensor   # (B, F)
    translation: torch.Tensor    # (B, 3) agent box at the target sample (global)
    rotation: torch.Tensor       # (B, 4)
    index: torch.Tensor          # (B,) target index in its dataset
    # Training only, on the synthetic world: the cue states seen in each frame (the side file),
    # which an auxiliary loss asks the feature branch to read off the XMem features.
    cues: torch.Tensor | None = None         # (B, T, n_cues)
    cue_valid: torch.Tensor | None = None    # (B, T)
    # With the map (--map): the drivable area around the agent in its frame (data/maps.py).
    map: torch.Tensor | None = None          # (B, H, W) in [0, 1]
    # Only when XMem is fine-tuned (features computed online from the frames):
    frames: torch.Tensor | None = None       # (B, T, 3, H, W) RGB in [0, 1]
    init_masks: torch.Tensor | None = None   # (B, H, W)
    init_frame: torch.Tensor | None = None   # (B,)
    frame_masks: torch.Tensor | None = None  # (B, T, H, W)

    def to(self, device) -> "TrajBatch":
        return TrajBatch(**{f.name: None if getattr(self, f.name) is None
                            else getattr(self, f.name).to(device) for f in fields(self)})


def collate_traj(items: list[dict]) -> TrajBatch:
    return TrajBatch(**{f.name: torch.stack([it[f.name] for it in items])
                        for f in fields(TrajBatch) if f.name in items[0]})


__all__ = ["TrajBatch", "collate_traj"]
