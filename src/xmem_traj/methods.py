"""The methods a run can train: one entry each, used by the config (choices), training (what
the head is fed), evaluation (row labels) and the run layout (checkpoint folders)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    """A trained predictor kind: what its head is fed besides the past track."""

    name: str
    label: str    # row label in eval tables
    inputs: str   # "xmem" (XMem features of the camera window), "cues" (the synthetic world's
                  # cue states as a perfect eye would read them: the ceiling), "intent" (its
                  # planned manoeuvres: what no camera can see, a diagnostic), "none" (history only)


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("xmem", "XMem + history (ours)", "xmem"),
    Method("history_only", "history-only (ablation)", "none"),
    Method("cue_oracle", "history + true cues (ceiling)", "cues"),
    Method("intent_oracle", "history + true plans (diagnostic)", "intent"),
)}

__all__ = ["METHODS", "Method"]
