"""XMem's features of a target's context objects (data/context_objects.py: its leader, the
signal head controlling its approach), each object in its own agent-view crops, started from its
mask on the first window frame where it is in view. Extracted and cached like the agent's
(inputs/feature_cache.py), as a split of its own per kind; joined to the agent's features by
the XMem input (inputs/xmem_input.py), each kind's block followed by a column that says where
that object was seen (a target without one has zeros there)."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
from nuscenes.map_expansion.map_api import NuScenesMap

from ..data.agent_dataset import NuScenesAgentDataset
from ..data.agent_index import AgentIndexer
from ..data.context_objects import ContextFinder, LaneMap
from ..data.maps import has_map_expansion
from ..data.records import AgentRecord
from .backbone import XMemBackbone
from .base import PrepareContext, SplitTargets
from .feature_cache import load_or_extract, weights_fingerprint

log = logging.getLogger(__name__)

RULES_VERSION = 1  # of data/context_objects.py's rules: part of the cache key


def _finder(ctx: PrepareContext, locations) -> ContextFinder:
    root = ctx.source.dataroot
    lanes = {
        loc: LaneMap(NuScenesMap(dataroot=root, map_name=loc))
        for loc in sorted(set(locations))
        if has_map_expansion(root, [loc])
    }
    missing = sorted(set(locations) - set(lanes))
    if missing:
        log.warning(
            "no map expansion for %s: no signal heads there, leaders on the straight path",
            ", ".join(missing),
        )
    return ContextFinder(AgentIndexer(ctx.nusc), lanes)


def context_records(ctx: PrepareContext, split: SplitTargets) -> dict[str, list]:
    """kind → per target its object's record, or None (computed once per split)."""

    def find() -> dict[str, list]:
        finder = _finder(ctx, split.locations)
        per_target = [finder.objects(r, loc) for r, loc in zip(split.records, split.locations)]
        out = {kind: [objs[kind] for objs in per_target] for kind in ctx.cfg.xmem.context_list}
        for kind, recs in out.items():
            seen = sum(r is not None for r in recs)
            ctx.report(
                f"context objects ({split.dataset.split}): {kind} seen for {seen}/{len(recs)}"
            )
        return out

    return ctx.once(("context_records", split.dataset.split), find)


def object_dataset(
    split: SplitTargets, kind: str, records: list[AgentRecord]
) -> NuScenesAgentDataset:
    """The objects of one kind as a dataset of their own (a split named after the kind)."""
    ds = split.dataset
    targets = replace(ds.targets, records=records, split=f"{ds.split}+{kind}@rules{RULES_VERSION}")
    return NuScenesAgentDataset(targets, image_size=ds.image_size)


def context_block(
    ctx: PrepareContext, backbone: XMemBackbone, split: SplitTargets, kind: str
) -> np.ndarray:
    """(N, T, C + 1): the kind's XMem features per target and frame, then 1 where the object
    was seen (all zero without one)."""
    cfg = ctx.cfg
    objects = context_records(ctx, split)[kind]
    present = [i for i, r in enumerate(objects) if r is not None]
    block = np.zeros((len(split), split.dataset.window_len, backbone.feature_dim + 1), np.float32)
    if not present:
        return block
    got = load_or_extract(
        object_dataset(split, kind, [objects[i] for i in present]),
        backbone,
        weights_fingerprint(cfg.xmem.xmem_weights or None, cfg.optim.seed),
        Path(cfg.data.resolved_cache_dir()),
        videos_per_step=cfg.xmem.videos_per_step,
        view="agent",
        crop_size=cfg.xmem.crop_size,
        num_workers=cfg.run.num_workers,
        device=ctx.device,
        progress=cfg.run.progress,
    )
    block[present, :, :-1] = got["features"] * got["valid"][..., None]
    block[present, :, -1] = got["valid"]
    return block


__all__ = ["RULES_VERSION", "context_block", "context_records", "object_dataset"]
