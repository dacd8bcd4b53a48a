"""What there was to see: the synthetic world's side file and what it tells about a target.

The side file (`<dataroot>/<version>/xmem_traj_world.json`, beside the 13 tables, which the
devkit ignores) holds, per camera frame (sample_data token), the cue state of every annotated
agent in view: its lamps (lit now), its indicators (active, blinking or not), which of its
faces the camera sees and how much of it is unoccluded; and per agent its planned manoeuvres
with the cue each gave. From it, a target's upcoming behaviour is one of CLASSES:

- under_way: a manoeuvre began at least one key frame before the target (its past shows it);
- foretold: the next manoeuvre begins within the horizon and its cue was seen in the window;
- no_cue: the next manoeuvre begins within the horizon, no cue for it was seen;
- no_change: nothing begins within the horizon.

The generator (synth/) writes this file with the schema defined here; a nuScenes copy without
it has none of this.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DatasetError
from .agent_index import AgentRecord


CLASSES = ("foretold", "no_cue", "under_way", "no_change")
FORMAT = 1
SIDE_FILE = "xmem_traj_world.json"
UNDER_WAY_US = 500_000      # one key-frame interval
HORIZON_US = 6_000_000
MIN_VISIBLE = 0.25          # a cue counts as seen where at least this much of the agent shows
#: Per frame entry: the agent, its lamps, the faces the camera sees, the unoccluded share.
FRAME_FIELDS = ("instance", "brake", "left", "right", "left_active", "right_active",
                "back", "front", "left_side", "right_side", "visible")
#: What the cue oracle is fed per window frame (what a perfect eye would read off the pixels).
ORACLE_FIELDS = ("brake_seen", "left_seen", "right_seen", "back", "front", "in_view")


@dataclass(frozen=True)
class FrameCue:
    brake: bool
    left: bool
    right: bool
    left_active: bool
    right_active: bool
    back: bool
    front: bool
    left_side: bool
    right_side: bool
    visible: float

    @classmethod
    def of(cls, row: Sequence) -> "FrameCue":
        return cls(*(bool(v) for v in row[1:10]), float(row[10]))

    def seen(self, category: str) -> dict[str, bool]:
        """The cues a perfect eye reads off this frame: brake lamps on the visible rear,
        lit indicators on any visible face of their side (a cyclist's arm, held out)."""
        shown = self.visible >= MIN_VISIBLE
        if category == "vehicle.bicycle":
            return {"brake_seen": False, "left_seen": shown and self.left_active,
                    "right_seen": shown and self.right_active}
        face = {"left": self.back or self.front or self.left_side,
                "right": self.back or self.front or self.right_side}
        return {"brake_seen": shown and self.brake and self.back,
                "left_seen": shown and self.left and face["left"],
                "right_seen": shown and self.right and face["right"]}

    def oracle(self, category: str) -> list[float]:
        seen = self.seen(category)
        return [float(seen["brake_seen"]), float(seen["left_seen"]), float(seen["right_seen"]),
                float(self.back), float(self.front), float(self.visible >= MIN_VISIBLE)]


def cue_seen(manoeuvre: dict, window: Sequence[tuple[int, FrameCue | None]], category: str) -> bool:
    """Was any cue of the manoeuvre visible in a window frame (timestamp, cue) since it began?"""
    for cue, on, _ in manoeuvre["cues"]:
        for ts, frame in window:
            if frame is None or ts < on:
                continue
            seen = frame.seen(category)
            if cue in ("indicator", "hand") and seen[f"{manoeuvre['side']}_seen"]:
                return True
            if cue == "brake" and seen["brake_seen"]:
                return True
            if cue == "brake_release" and frame.back and not frame.brake and frame.visible >= MIN_VISIBLE:
                return True
    return False


def classify(manoeuvres: Sequence[dict], t0: int, window: Sequence[tuple[int, FrameCue | None]],
             category: str) -> str:
    """The target's class (CLASSES) at timestamp t0 (µs) given its window frames."""
    if any(m["t_motion"] <= t0 - UNDER_WAY_US and m["t_end"] > t0 for m in manoeuvres):
        return "under_way"
    upcoming = [m for m in manoeuvres if t0 - UNDER_WAY_US < m["t_motion"] <= t0 + HORIZON_US]
    if not upcoming:
        return "no_change"
    first = min(upcoming, key=lambda m: m["t_motion"])
    return "foretold" if cue_seen(first, window, category) else "no_cue"


INTENT_KINDS = ("lane_change", "turn", "stop", "go", "slow_down", "speed_up")
INTENT_WIDTH = 2 * (len(INTENT_KINDS) + 4)


class WorldCues:
    def __init__(self, frames: dict[str, dict[str, FrameCue]], agents: dict[str, dict]):
        self.frames, self.agents = frames, agents

    @staticmethod
    def path(dataroot: str | Path, version: str) -> Path:
        """Where a dataroot's side file is (beside its tables)."""
        return Path(dataroot) / version / SIDE_FILE

    @classmethod
    def load(cls, dataroot: str | Path, version: str) -> "WorldCues | None":
        """The side file of a synthetic dataroot, or None where there is none."""
        path = cls.path(dataroot, version)
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as err:
            raise DatasetError(f"side file {path} is not valid JSON: {err}") from None
        if data.get("format") != FORMAT:
            raise DatasetError(f"side file {path} has format {data.get('format')}, expected {FORMAT}; "
                               "regenerate the synthetic dataset")
        frames = {sd: {row[0]: FrameCue.of(row) for row in rows} for sd, rows in data["frames"].items()}
        return cls(frames, data["agents"])

    def window(self, rec: AgentRecord) -> list[tuple[int, FrameCue | None]]:
        """(timestamp, the agent's cue state) per window frame (padding left out)."""
        return [(ts, self.frames.get(tok, {}).get(rec.instance_token))
                for tok, ts in zip(rec.frame_tokens, rec.frame_timestamps) if tok]

    def target_class(self, rec: AgentRecord) -> str:
        agent = self.agents.get(rec.instance_token)
        if agent is None:
            return "no_change"
        return classify(agent["manoeuvres"], rec.sample_timestamp, self.window(rec), agent["category"])

    def intent_features(self, rec: AgentRecord) -> np.ndarray:
        """The intent oracle's input (INTENT_WIDTH,): the agent's next two manoeuvres under way
        or beginning within 8 s of the target, each as its kind (one-hot INTENT_KINDS), side
        (left, right) and start and end relative to the target (units of 6 s) — the plan no
        camera sees, to measure how much of the future a perfect reader of intentions gets."""
        out = np.zeros(INTENT_WIDTH, np.float32)
        agent = self.agents.get(rec.instance_token)
        if agent is None:
            return out
        t0, per = rec.sample_timestamp, len(INTENT_KINDS) + 4
        ahead = [m for m in agent["manoeuvres"] if m["t_end"] > t0 - UNDER_WAY_US and m["t_motion"] <= t0 + 8_000_000]
        for j, m in enumerate(ahead[:2]):
            if m["kind"] not in INTENT_KINDS:
                continue
            row = out[j * per:(j + 1) * per]
            row[INTENT_KINDS.index(m["kind"])] = 1.0
            row[len(INTENT_KINDS):] = [m["side"] == "left", m["side"] == "right",
                                       (m["t_motion"] - t0) / HORIZON_US, (m["t_end"] - t0) / HORIZON_US]
        return out

    def oracle_features(self, rec: AgentRecord) -> tuple[np.ndarray, np.ndarray]:
        """The cue oracle's inputs per window frame: (T, len(ORACLE_FIELDS)) and valid (T,)."""
        category = self.agents.get(rec.instance_token, {}).get("category", "")
        feats = np.zeros((len(rec.frame_tokens), len(ORACLE_FIELDS)), np.float32)
        valid = np.zeros(len(rec.frame_tokens), bool)
        for t, tok in enumerate(rec.frame_tokens):
            cue = self.frames.get(tok, {}).get(rec.instance_token) if tok else None
            if cue is not None:
                feats[t] = cue.oracle(category)
                valid[t] = True
        return feats, valid


def class_counts(cues: WorldCues, records: Sequence[AgentRecord]) -> dict[str, int]:
    counts = Counter(cues.target_class(r) for r in records)
    return {c: counts.get(c, 0) for c in CLASSES}


def cue_statistics(cues: WorldCues) -> dict:
    """Over every agent of the world: manoeuvres by kind, the share that gave any cue, and the
    lead of the earliest cue over the start of the motion (s; negative: the cue came later)."""
    stats: dict = {}
    for agent in cues.agents.values():
        for m in agent["manoeuvres"]:
            s = stats.setdefault(m["kind"], {"count": 0, "cued": 0, "leads": []})
            s["count"] += 1
            if m["cues"]:
                s["cued"] += 1
                s["leads"].append((m["t_motion"] - min(on for _, on, _ in m["cues"])) / 1e6)
    return {k: {"count": v["count"], "cued_share": v["cued"] / max(v["count"], 1),
                "lead_s_median": float(np.median(v["leads"])) if v["leads"] else None,
                "lead_s_p10_p90": ([float(np.percentile(v["leads"], 10)), float(np.percentile(v["leads"], 90))]
                                   if v["leads"] else None)}
            for k, v in sorted(stats.items())}


__all__ = ["CLASSES", "FORMAT", "FRAME_FIELDS", "FrameCue", "INTENT_WIDTH", "ORACLE_FIELDS",
           "SIDE_FILE", "WorldCues", "class_counts", "classify", "cue_seen", "cue_statistics"]
