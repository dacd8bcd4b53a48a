"""train-xmem's own options (`xmem-traj train-xmem`), one dataclass like TrainConfig's groups
(config_groups.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config_fields import _f, check_fields, split_list
from .errors import ConfigError


@dataclass
class SegmentationConfig:
    """`xmem-traj train-xmem`'s own options (data, XMem weights, precision and seed come from
    TrainConfig's groups)."""

    out: str = _f(
        "",
        "where the trained XMem state dict is written (official key names: "
        "--xmem-weights loads it); must not exist yet",
    )
    steps: int = _f(300, "optimiser steps", min=1)
    clips_per_step: int = _f(4, "agent-view clips per step (one agent each)", min=1)
    clip_frames: int = _f(
        3,
        "frames per clip, from the agent's first masked frame (the first "
        "frame's mask is given, the others are segmented from memory)",
        min=2,
    )
    xmem_lr: float = _f(1e-5, "AdamW learning rate (the reference's)", min=0.0)
    xmem_weight_decay: float = _f(0.05, "AdamW weight decay", min=0.0)
    freeze: str = _f(
        "",
        "comma list of XMem module prefixes kept fixed, e.g. key_encoder "
        "(the ResNet-50: two thirds of a step's time); empty: train all",
    )
    eval_clips: int = _f(
        64, "held-out clips (of --val-split) whose mask IoU is reported before and after", min=0
    )

    @property
    def freeze_list(self) -> tuple[str, ...]:
        return tuple(split_list(self.freeze))

    def validate(self) -> "SegmentationConfig":
        check_fields(self)
        if not self.out:
            raise ConfigError(
                "out: give the file the trained XMem is written to (--out XMem-synth.pth)"
            )
        out = Path(self.out)
        if out.exists():
            raise ConfigError(
                f"out: {out} exists; choose another name (a trained XMem is never overwritten)"
            )
        if not out.parent.is_dir():
            raise ConfigError(f"out: folder {out.parent} does not exist")
        return self


__all__ = ["SegmentationConfig"]
