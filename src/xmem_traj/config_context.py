"""The context group of TrainConfig: what the context inputs hold — the neighbours every head
reads (inputs/neighbours.py). Defaults live here, as the other groups' live in
config_groups.py."""

from __future__ import annotations

from dataclasses import dataclass

from .config_groups import _f


@dataclass
class ContextConfig:
    """The neighbours."""

    neighbours_max: int = _f(
        8, "neighbours per target: the nearest annotated agents at the target sample", min=1
    )
    neighbour_radius: float = _f(
        40.0, "metres: agents farther from the target at the target sample are left out", min=1.0
    )


__all__ = ["ContextConfig"]
