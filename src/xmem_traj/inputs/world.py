"""Inputs from the synthetic world's side file (data/world_cues.py), the only room that knows
the world: what a perfect eye would read in each frame (slot "cue_states", the cue oracle's
input; the same states as "cue_labels", the XMem model's auxiliary loss labels) and the
agent's true plans ("intent", the intent oracle's diagnostic input), plus the eval subsets by
what lies ahead. On data without the side file these inputs do not exist."""

from __future__ import annotations

import numpy as np

from ..data.world_cues import CLASSES, WorldCues
from .base import InputProvider, PrepareContext, SplitTargets, frame_slots, register_input


def cue_states(ctx: PrepareContext, split: SplitTargets) -> tuple[np.ndarray, np.ndarray]:
    """(N, T, len(ORACLE_FIELDS)) states and (N, T) validity of a split, built once."""

    def build():
        rows = [ctx.world.oracle_features(r) for r in split.records]
        return np.stack([f for f, _ in rows]), np.stack([v for _, v in rows])

    return ctx.once(("cue_states", split.role), build)


class CueStates(InputProvider):
    """The cue states of each window frame under a slot name ("cue_states" as an input,
    "cue_labels" as training labels)."""

    def __init__(self, ctx: PrepareContext, name: str):
        self.ctx, self.slots = ctx, frame_slots(name)

    def build(self, split: SplitTargets) -> dict[str, np.ndarray]:
        return dict(zip(self.slots, cue_states(self.ctx, split)))


class Intent(InputProvider):
    """The agent's next manoeuvres (data/world_cues.py intent_features), the same at every
    frame."""

    slots = frame_slots("intent")

    def __init__(self, ctx: PrepareContext):
        self.world = ctx.world

    def build(self, split: SplitTargets) -> dict[str, np.ndarray]:
        plans = np.stack([self.world.intent_features(r) for r in split.records])
        t = split.dataset.window_len
        return {
            "intent": np.repeat(plans[:, None], t, 1),
            "intent_valid": np.ones((len(split), t), bool),
        }


CLASS_TITLES = {
    "foretold": "with a past, change foretold by a cue seen in the window",
    "no_cue": "with a past, change ahead with no cue seen",
    "under_way": "with a past, change already under way",
    "no_change": "with a past, no change within the horizon",
}


def class_subsets(
    world: WorldCues, records, with_past: np.ndarray
) -> dict[str, tuple[np.ndarray, str]]:
    """Eval subsets among the targets with a past, by what lies ahead (CLASSES): name →
    (mask, title)."""
    classes = np.array([world.target_class(r) for r in records])
    return {c: (with_past & (classes == c), CLASS_TITLES[c]) for c in CLASSES}


def _when_world(make):
    return lambda ctx: make(ctx) if ctx.world is not None else None


register_input("cue_states", _when_world(lambda ctx: CueStates(ctx, "cue_states")))
register_input("cue_labels", _when_world(lambda ctx: CueStates(ctx, "cue_labels")))
register_input("intent", _when_world(Intent))

__all__ = ["CLASS_TITLES", "CueStates", "Intent", "class_subsets", "cue_states"]
