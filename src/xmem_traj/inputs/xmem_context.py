"""XMem's features of a target's context objects (data/context_objects.py: its leader, the
signal head controlling its approach), each object in its own agent-view crops, started from its
mask on the first window frame where it is in view. Extracted and cached like the agent's
(inputs/feature_cache.py), as a split of its own per kind; joined to the agent's features by
the XMem input (inputs/xmem_input.py), each kind's block followed by a column that says where
that object was seen (a target without one has zeros there)."""

from __future__ import annotations

import numpy as np

from ..data.agent_dataset import NuScenesAgentDataset
from ..data.context_objects import find_context, object_dataset
from .backbone import XMemBackbone
from .base import PrepareContext, SplitTargets
from .feature_cache import load_or_extract, weights_fingerprint


def cached_features(
    ctx: PrepareContext, backbone: XMemBackbone, ds: NuScenesAgentDataset, view: str
) -> dict[str, np.ndarray]:
    """features (N, T, C) and valid (N, T) of XMem over ds's targets in a view, read from the
    feature cache or extracted into it with the run's settings (the agent's and each context
    object kind's alike)."""
    cfg = ctx.cfg
    return load_or_extract(
        ds,
        backbone,
        weights_fingerprint(cfg.xmem.xmem_weights or None, cfg.optim.seed),
        cfg.data.resolved_cache_dir(),
        videos_per_step=cfg.xmem.videos_per_step,
        view=view,
        crop_size=cfg.xmem.crop_size,
        num_workers=cfg.run.num_workers,
        device=ctx.device,
        progress=cfg.run.progress,
    )


def context_records(ctx: PrepareContext, split: SplitTargets) -> dict[str, list]:
    """kind → per target its object's record, or None (computed once per split)."""

    def find() -> dict[str, list]:
        kinds = ctx.cfg.xmem.context_list
        out = find_context(ctx.nusc, ctx.source.dataroot, split.records, kinds)
        for kind, recs in out.items():
            seen = sum(r is not None for r in recs)
            ctx.report(
                f"context objects ({split.dataset.split}): {kind} in view for {seen}/{len(recs)}"
            )
        return out

    return ctx.once(("context_records", split.dataset.split), find)


def context_block(
    ctx: PrepareContext, backbone: XMemBackbone, split: SplitTargets, kind: str
) -> np.ndarray:
    """(N, T, C + 1): the kind's XMem features per target and frame, then 1 where the object
    was seen (all zero without one)."""
    objects = context_records(ctx, split)[kind]
    present = [i for i, r in enumerate(objects) if r is not None]
    block = np.zeros((len(split), split.dataset.window_len, backbone.feature_dim + 1), np.float32)
    if not present:
        return block
    objects_ds = object_dataset(split.dataset, kind, [objects[i] for i in present])
    got = cached_features(ctx, backbone, objects_ds, "agent")
    block[present, :, :-1] = got["features"] * got["valid"][..., None]
    block[present, :, -1] = got["valid"]
    return block


__all__ = ["cached_features", "context_block", "context_records"]
