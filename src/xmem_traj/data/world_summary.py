"""Counts over the synthetic world's side file (data/world_file.py): targets by class and by
cause, manoeuvres by kind and cause, misleading cues. bench/world_stats.py prints them."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .world_file import WorldFile
from .world_schema import CAUSES, CLASSES


def class_counts(world: WorldFile, records: Sequence) -> dict[str, int]:
    counts = dict.fromkeys(CLASSES, 0)
    for r in records:
        counts[world.target_class(r)] += 1
    return counts


def cause_table(world: WorldFile, records: Sequence) -> dict[str, dict[str, int]]:
    """Per cause: targets, and those whose cause a window frame showed."""
    table = {c: {"targets": 0, "cause_visible": 0} for c in CAUSES}
    for r in records:
        cause = world.target_cause(r)
        table[cause]["targets"] += 1
        table[cause]["cause_visible"] += int(world.cause_visible(r))
    return table


def manoeuvre_statistics(world: WorldFile) -> dict:
    """Over every annotated vehicle: manoeuvres by kind, their causes, the share that gave a cue
    and the earliest cue's lead over the motion (s; negative: the cue came later)."""
    stats: dict = {}
    for agent in world.agents.values():
        for m in agent["manoeuvres"]:
            s = stats.setdefault(
                m["kind"], {"count": 0, "cued": 0, "leads": [], "causes": dict.fromkeys(CAUSES, 0)}
            )
            s["count"] += 1
            s["causes"][m["cause"]] += 1
            if m["cues"]:
                s["cued"] += 1
                s["leads"].append((m["t_motion"] - min(on for _, on, _ in m["cues"])) / 1e6)
    return {
        k: {
            "count": v["count"],
            "causes": v["causes"],
            "cued_share": v["cued"] / max(v["count"], 1),
            "lead_s_median": float(np.median(v["leads"])) if v["leads"] else None,
            "lead_s_p10_p90": (
                [float(np.percentile(v["leads"], 10)), float(np.percentile(v["leads"], 90))]
                if v["leads"]
                else None
            ),
        }
        for k, v in sorted(stats.items())
    }


def misleading_statistics(world: WorldFile) -> dict:
    """Misleading cues (no manoeuvre follows) against the cued manoeuvres of moving vehicles."""
    vehicles = [
        a for a in world.agents.values() if a["category"].startswith("vehicle") and not a["parked"]
    ]
    mis = [m for a in vehicles for m in a.get("misleading", [])]
    cued = sum(bool(m["cues"]) for a in vehicles for m in a["manoeuvres"])
    return {
        "vehicles": len(vehicles),
        "brake": sum(m[0] == "brake" for m in mis),
        "indicator": sum(m[0].startswith("indicator") for m in mis),
        "cued_manoeuvres": cued,
    }


__all__ = ["cause_table", "class_counts", "manoeuvre_statistics", "misleading_statistics"]
