"""The synthetic world's side file seen from the loader: for each target record, what there
was to see in its camera window (the cue oracle's inputs) and the class of its upcoming
behaviour (synth/cues.py). A nuScenes copy without the side file has neither."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DatasetError
from ..synth.cues import (CLASSES, FORMAT, HORIZON_US, ORACLE_FIELDS, SIDE_FILE, UNDER_WAY_US, FrameCue,
                          classify)
from .agent_index import AgentRecord


INTENT_KINDS = ("lane_change", "turn", "stop", "go", "slow_down", "speed_up")
INTENT_WIDTH = 2 * (len(INTENT_KINDS) + 4)


class WorldCues:
    def __init__(self, frames: dict[str, dict[str, FrameCue]], agents: dict[str, dict]):
        self.frames, self.agents = frames, agents

    @classmethod
    def load(cls, dataroot: str | Path, version: str) -> "WorldCues | None":
        """The side file of a synthetic dataroot, or None where there is none."""
        path = Path(dataroot) / version / SIDE_FILE
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


__all__ = ["INTENT_WIDTH", "WorldCues", "class_counts", "cue_statistics"]
