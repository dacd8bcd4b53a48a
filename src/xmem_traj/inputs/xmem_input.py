"""The XMem input: per-frame features of XMem run over each target's camera window, starting
from the agent's mask (slots "xmem" (N, T, C) and "xmem_valid" (N, T)), followed by those of
its context objects where asked (inputs/xmem_context.py). Frozen XMem: extracted
once per split on the run's device and kept in the feature cache. Fine-tuned XMem (parts
trainable): the frames and masks are read per item and XMem runs inside the model's step."""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import torch

from ..config import TrainConfig
from ..data.frames import frame_masks, init_mask, load_frames, output_size
from .backbone import XMemBackbone
from .base import InputProvider, PrepareContext, SplitTargets, frame_slots, register_input
from .xmem_context import cached_features, context_block

log = logging.getLogger(__name__)

#: What an online (fine-tuning) item carries for the model's XMem (traj/models/frame_head.py).
ONLINE_SLOTS = ("frames", "init_masks", "init_frame", "frame_masks")


def make_backbone(cfg: TrainConfig) -> XMemBackbone:
    """The run's XMem (resolved config): its weights or the random init of the run's seed."""
    return XMemBackbone.from_config(cfg.xmem, masks=cfg.experimental.masks, seed=cfg.optim.seed)


def views(cfg: TrainConfig) -> tuple[str, ...]:
    """The views whose features are concatenated."""
    return ("frame", "agent") if cfg.experimental.view == "both" else (cfg.experimental.view,)


class XMemInput(InputProvider):
    slots = frame_slots("xmem")

    def __init__(self, ctx: PrepareContext, backbone: XMemBackbone):
        self.ctx, self.backbone = ctx, backbone

    @property
    def online(self) -> bool:
        return bool(self.backbone.trainable)

    @property
    def width(self) -> int:
        cfg, dim = self.ctx.cfg, self.backbone.feature_dim
        return len(views(cfg)) * dim + len(cfg.xmem.context_list) * (dim + 1)

    def build(self, split: SplitTargets) -> dict[str, np.ndarray]:
        if self.online:
            return {}
        cfg = self.ctx.cfg
        parts = [cached_features(self.ctx, self.backbone, split.dataset, v) for v in views(cfg)]
        context = [
            context_block(self.ctx, self.backbone, split, kind) for kind in cfg.xmem.context_list
        ]
        return {
            "xmem": np.concatenate([p["features"] for p in parts] + context, -1),
            "xmem_valid": np.logical_and.reduce([p["valid"] for p in parts]),
        }

    def shapes(
        self, split: SplitTargets, arrays: dict[str, np.ndarray]
    ) -> dict[str, tuple[int, ...]]:
        if arrays:
            return super().shapes(split, arrays)
        t = split.dataset.window_len  # online: what the model's own XMem will compute
        return {"xmem": (t, self.width), "xmem_valid": (t,)}

    def items(self, split: SplitTargets) -> Callable[[int], dict[str, torch.Tensor]] | None:
        if not self.online:
            return None
        ds = split.dataset

        def item(i: int) -> dict[str, torch.Tensor]:
            rec = ds.records[i]
            size = output_size(rec, ds.image_size)
            return {
                "frames": torch.from_numpy(load_frames(rec.frame_paths, size)),
                "init_masks": torch.from_numpy(init_mask(rec, size)),
                "init_frame": torch.tensor(rec.init_frame),
                "frame_masks": torch.from_numpy(frame_masks(rec, size)),
            }

        return item


def _xmem_input(ctx: PrepareContext) -> XMemInput:
    if ctx.backbone is None:
        raise ValueError("the XMem input needs the context's backbone (prepare builds it)")
    return XMemInput(ctx, ctx.backbone)


register_input("xmem", _xmem_input)

__all__ = ["ONLINE_SLOTS", "XMemInput", "make_backbone", "views"]
