"""Inputs from the synthetic world's side file (data/world_file.py, the one reader), the only
room that knows the world: the true signal, leader and cue states of each window frame (slot
"scene_state", the scene-state oracle's input), what a perfect eye reads in each frame (slot
"cue_labels", the XMem model's auxiliary loss labels) and the agent's true plans ("intent", the
intent oracle's diagnostic input), plus the eval subsets by what lies ahead and by its cause.
On data without the side file these inputs do not exist."""

from __future__ import annotations

import numpy as np

from ..data.world_file import CAUSES, CLASSES, WorldFile
from .base import InputProvider, PrepareContext, SplitTargets, frame_slots, register_input


def world_frames(ctx: PrepareContext, split: SplitTargets, kind: str) -> tuple[np.ndarray, ...]:
    """(N, T, C) values and (N, T) validity of a split's per-frame world arrays, built once:
    kind "scene_state" (SCENE_STATE_FIELDS) or "cue_labels" (CUE_LABEL_FIELDS)."""

    def build():
        read = getattr(ctx.world, kind)
        rows = [read(r) for r in split.records]
        return np.stack([f for f, _ in rows]), np.stack([v for _, v in rows])

    return ctx.once((kind, split.role), build)


class WorldFrames(InputProvider):
    """One per-frame array of the side file under its slot name ("scene_state" as an input,
    "cue_labels" as training labels)."""

    def __init__(self, ctx: PrepareContext, kind: str):
        self.ctx, self.kind, self.slots = ctx, kind, frame_slots(kind)

    def build(self, split: SplitTargets) -> dict[str, np.ndarray]:
        return dict(zip(self.slots, world_frames(self.ctx, split, self.kind)))


class Intent(InputProvider):
    """The agent's next manoeuvres (WorldFile.intent_features), the same at every frame."""

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
    "foretold": "with a past, change foretold by a cue or cause seen in the window",
    "no_cue": "with a past, change ahead with no cue or cause seen",
    "under_way": "with a past, change already under way",
    "no_change": "with a past, no change within the horizon",
}
#: Subsets by the cause of the next (or ongoing) manoeuvre (no manoeuvre: no subset).
CAUSE_SUBSETS = tuple(c for c in CAUSES if c != "none")


def world_subsets(
    world: WorldFile, records, with_past: np.ndarray
) -> dict[str, tuple[np.ndarray, str]]:
    """Eval subsets among the targets with a past, name → (mask, title): by what lies ahead
    (CLASSES), by the cause of the next manoeuvre (`cause_<cause>`) and `cause_visible`, where
    a window frame showed that cause to the target's camera. All exploratory."""
    classes = np.array([world.target_class(r) for r in records])
    causes = np.array([world.target_cause(r) for r in records])
    visible = np.array([world.cause_visible(r) for r in records], bool)
    out = {c: (with_past & (classes == c), CLASS_TITLES[c]) for c in CLASSES}
    for c in CAUSE_SUBSETS:
        title = f"with a past, next manoeuvre caused by {c.replace('_', ' ')}"
        out[f"cause_{c}"] = (with_past & (causes == c), title)
    out["cause_visible"] = (
        with_past & visible,
        "with a past, the next manoeuvre's cause seen in a window frame",
    )
    return out


def _when_world(make):
    return lambda ctx: make(ctx) if ctx.world is not None else None


register_input("scene_state", _when_world(lambda ctx: WorldFrames(ctx, "scene_state")))
register_input("cue_labels", _when_world(lambda ctx: WorldFrames(ctx, "cue_labels")))
register_input("intent", _when_world(Intent))

__all__ = [
    "CAUSE_SUBSETS",
    "CLASS_TITLES",
    "Intent",
    "WorldFrames",
    "world_frames",
    "world_subsets",
]
