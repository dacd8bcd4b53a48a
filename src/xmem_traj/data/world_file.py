"""The synthetic world's side file read for the loader's records (data/world_schema.py holds
its schema). A loader record `rec` (data.records.AgentRecord) gives the instance, the target
sample's timestamp and the window's frames of one camera; from them this reader derives the
agent's true states per frame (scene_state), the labels a perfect eye reads (cue_labels), the
target's class of upcoming behaviour and its cause. A nuScenes copy without the side file has
none of it (WorldFile.load gives None).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .world_schema import (
    CAUSES,
    CLASSES,
    CUE_LABEL_FIELDS,
    FORETELLS,
    FORMAT,
    FRAME_FIELDS,
    HEAD_FIELDS,
    HORIZON_US,
    INTENT_WIDTH,
    KINDS,
    MIN_HEAD_PIXELS,
    MIN_VISIBLE,
    SCENE_STATE_FIELDS,
    SIDE_FILE,
    SIGNAL_STATES,
    STATE_FIELDS,
    UNDER_WAY_US,
    FrameCue,
)


def side_file_path(dataroot: str | Path, version: str) -> Path:
    """Where a dataroot's side file is (beside its tables)."""
    return Path(dataroot) / version / SIDE_FILE


class WorldFile:
    """The side file of a synthetic dataroot, read for the loader's records."""

    def __init__(self, data: dict, path: Path | None = None):
        self.path = path
        self.frames = {
            sd: {row[0]: FrameCue(row) for row in rows} for sd, rows in data["frames"].items()
        }
        self.heads = {sd: {int(r[0]): r for r in rows} for sd, rows in data["heads"].items()}
        self.agents: dict[str, dict] = data["agents"]
        self.signal_heads = data.get("signal_heads", {})
        self.sources = data.get("sources", {})
        self._states: dict[str, tuple] = {}

    @classmethod
    def load(cls, dataroot: str | Path, version: str) -> "WorldFile | None":
        """The side file under dataroot/version, or None where there is none."""
        path = side_file_path(dataroot, version)
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as err:
            raise DatasetError(f"side file {path} is not valid JSON: {err}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            got = data.get("format") if isinstance(data, dict) else None
            raise DatasetError(
                f"side file {path} has format {got}, expected {FORMAT}; "
                "regenerate the synthetic dataset"
            )
        try:
            return cls(data, path)
        except (KeyError, TypeError, IndexError, ValueError) as err:
            raise DatasetError(f"side file {path} is malformed: {err!r}") from None

    # -- the agent's true states ------------------------------------------------------------
    def _series(self, token: str):
        if token not in self._states:
            s = self.agents[token]["states"]
            rows = s["rows"]
            num = np.array(
                [
                    [np.nan if v is None else float(v) for i, v in enumerate(r) if i != 3]
                    for r in rows
                ],
                float,
            ).reshape(len(rows), len(STATE_FIELDS) - 1)
            self._states[token] = (int(s["t0"]), int(s["dt"]), num, [r[3] for r in rows])
        return self._states[token]

    def state_at(self, token: str, ts: int) -> dict | None:
        """The agent's true state at timestamp ts (µs; the last step at or before it)."""
        if token not in self.agents or not self.agents[token].get("states", {}).get("rows"):
            return None
        t0, dt, num, leaders = self._series(token)
        k = int(np.floor((ts - t0) / dt + 1e-6))
        if k < 0 or k >= len(num):
            return None
        names = [f for f in STATE_FIELDS if f != "leader"]
        out = {name: num[k, i] for i, name in enumerate(names)}
        out["leader"] = leaders[k]
        return out

    def _window(self, rec) -> list[tuple[int, str, int]]:
        return [
            (t, tok, ts)
            for t, (tok, ts) in enumerate(zip(rec.frame_tokens, rec.frame_timestamps))
            if tok
        ]

    def _head_seen(self, tok: str, head: float) -> tuple[bool, str]:
        """Is head `head` seen face on in frame tok, and the colour it shows."""
        if not np.isfinite(head) or head < 0:
            return False, "none"
        row = self.heads.get(tok, {}).get(int(head))
        if row is None or not row[2] or row[3] < MIN_HEAD_PIXELS:
            return False, "none"
        return True, SIGNAL_STATES[int(row[1])]

    def scene_state(self, rec) -> tuple[np.ndarray, np.ndarray]:
        """(T, len(SCENE_STATE_FIELDS)) float32 true states per window frame, valid (T,)."""
        out = np.zeros((len(rec.frame_tokens), len(SCENE_STATE_FIELDS)), np.float32)
        valid = np.zeros(len(rec.frame_tokens), bool)
        for t, tok, ts in self._window(rec):
            st = self.state_at(rec.instance_token, ts)
            if st is None:
                continue
            signal = SIGNAL_STATES[int(st["signal"])] if np.isfinite(st["signal"]) else "none"
            row = dict.fromkeys(SCENE_STATE_FIELDS, 0.0)
            if signal != "none":
                row[f"signal_{signal}"] = 1.0
                row["stop_line_m"] = np.nan_to_num(st["stop_line_m"])
            row["head_in_view"] = float(self._head_in_view(tok, st["head"]))
            if np.isfinite(st["gap_m"]):
                row.update(
                    leader=1.0,
                    leader_gap_m=st["gap_m"],
                    leader_speed=np.nan_to_num(st["leader_speed"]),
                    leader_braking=np.nan_to_num(st["leader_braking"]),
                )
            row.update(brake=st["brake"], left=st["left"], right=st["right"], speed=st["speed"])
            out[t] = [row[f] for f in SCENE_STATE_FIELDS]
            valid[t] = True
        return out, valid

    def _head_in_view(self, tok: str, head: float) -> bool:
        if not np.isfinite(head) or head < 0:
            return False
        row = self.heads.get(tok, {}).get(int(head))
        return row is not None and row[3] >= MIN_HEAD_PIXELS

    def cue_labels(self, rec) -> tuple[np.ndarray, np.ndarray]:
        """(T, len(CUE_LABEL_FIELDS)) float32: what a perfect eye reads per window frame of the
        record's camera; valid (T,): the frame exists and shows the agent."""
        category = self.agents.get(rec.instance_token, {}).get("category", "")
        out = np.zeros((len(rec.frame_tokens), len(CUE_LABEL_FIELDS)), np.float32)
        valid = np.zeros(len(rec.frame_tokens), bool)
        for t, tok, ts in self._window(rec):
            cue = self.frames.get(tok, {}).get(rec.instance_token)
            if cue is None:
                continue
            seen = cue.seen(category)
            row = dict.fromkeys(CUE_LABEL_FIELDS, 0.0)
            row.update(
                {k: float(v) for k, v in seen.items()}, in_view=float(cue.visible >= MIN_VISIBLE)
            )
            st = self.state_at(rec.instance_token, ts)
            if st is not None:
                head_seen, colour = self._head_seen(tok, st["head"])
                if head_seen:
                    row["head_seen"] = 1.0
                    if colour in ("red", "yellow", "green"):
                        row[f"head_{colour}"] = 1.0
                lead = self.frames.get(tok, {}).get(st["leader"]) if st["leader"] else None
                if lead is not None and lead.visible >= MIN_VISIBLE:
                    row["leader_seen"] = 1.0
                    lead_cat = self.agents.get(st["leader"], {}).get("category", "")
                    row["leader_brake_seen"] = float(lead.seen(lead_cat)["brake_seen"])
            out[t] = [row[f] for f in CUE_LABEL_FIELDS]
            valid[t] = True
        return out, valid

    # -- what the target is about to do, and why ---------------------------------------------
    def cue_seen(self, rec, manoeuvre: dict) -> bool:
        """Did a window frame show a cue the agent gave for the manoeuvre (after it began)?"""
        category = self.agents.get(rec.instance_token, {}).get("category", "")
        for _, tok, ts in self._window(rec):
            frame = self.frames.get(tok, {}).get(rec.instance_token)
            if frame is None:
                continue
            seen = frame.seen(category)
            for cue, on, _ in manoeuvre["cues"]:
                if ts < on:
                    continue
                if cue in ("indicator", "hand") and self._indicator_seen(seen, manoeuvre):
                    return True
                if cue == "brake" and seen["brake_seen"]:
                    return True
                if (
                    cue == "brake_release"
                    and frame.back
                    and not frame.brake
                    and frame.visible >= MIN_VISIBLE
                ):
                    return True
        return False

    @staticmethod
    def _indicator_seen(seen: dict, manoeuvre: dict) -> bool:
        """The manoeuvre's indicator in view: its side's, or either side's for a manoeuvre
        without one (a stop before a turn carries the turn's indicator)."""
        side = manoeuvre.get("side", "")
        if side in ("left", "right"):
            return bool(seen[f"{side}_seen"])
        return bool(seen["left_seen"] or seen["right_seen"])

    def cause_seen(self, rec, manoeuvre: dict) -> bool:
        """Did a window frame show the manoeuvre's cause to the record's camera: its signal's
        head face on in a colour that foretells it, its leader in view, or (own plan, yield)
        a cue of the agent's own?"""
        cause, ref = manoeuvre["cause"], manoeuvre.get("cause_ref", "")
        if cause in ("own_plan", "yield"):
            return self.cue_seen(rec, manoeuvre)
        for _, tok, _ in self._window(rec):
            if cause == "signal" and ref.startswith("head:"):
                seen, colour = self._head_seen(tok, float(ref.split(":")[1]))
                if seen and colour in FORETELLS.get(manoeuvre["kind"], ()):
                    return True
            if cause == "leader" and ref:
                lead = self.frames.get(tok, {}).get(ref)
                if lead is not None and lead.visible >= MIN_VISIBLE:
                    return True
        return False

    def _classify(self, rec) -> tuple[str, dict | None]:
        agent = self.agents.get(rec.instance_token)
        if agent is None:
            return "no_change", None
        t0, plan = rec.sample_timestamp, agent["manoeuvres"]
        ongoing = [m for m in plan if m["t_motion"] <= t0 - UNDER_WAY_US and m["t_end"] > t0]
        if ongoing:
            return "under_way", ongoing[0]
        upcoming = [m for m in plan if t0 - UNDER_WAY_US < m["t_motion"] <= t0 + HORIZON_US]
        if not upcoming:
            return "no_change", None
        first = min(upcoming, key=lambda m: m["t_motion"])
        told = self.cause_seen(rec, first) or self.cue_seen(rec, first)
        return ("foretold" if told else "no_cue"), first

    def target_class(self, rec) -> str:
        """One of CLASSES: a manoeuvre under way (begun a key frame before the target); the next
        one, within the horizon, foretold by its cause or the agent's cue seen in the window;
        one not foretold; no change within the horizon."""
        return self._classify(rec)[0]

    def target_cause(self, rec) -> str:
        """The cause (CAUSES) of the manoeuvre that sets the target's class; none for none."""
        manoeuvre = self._classify(rec)[1]
        return manoeuvre["cause"] if manoeuvre is not None else "none"

    def cause_visible(self, rec) -> bool:
        """Was the cause of the target's upcoming (or ongoing) manoeuvre shown in the window?"""
        manoeuvre = self._classify(rec)[1]
        return manoeuvre is not None and self.cause_seen(rec, manoeuvre)

    def intent_features(self, rec) -> np.ndarray:
        """The intent oracle's input (INTENT_WIDTH,): the agent's next two manoeuvres under way
        or beginning within 8 s of the target, each as its kind (one-hot KINDS), side (left,
        right) and start and end relative to the target (units of 6 s) — what no camera sees."""
        out = np.zeros(INTENT_WIDTH, np.float32)
        agent = self.agents.get(rec.instance_token)
        if agent is None:
            return out
        t0, per = rec.sample_timestamp, len(KINDS) + 4
        ahead = [
            m
            for m in agent["manoeuvres"]
            if m["t_end"] > t0 - UNDER_WAY_US and m["t_motion"] <= t0 + 8_000_000
        ]
        for j, m in enumerate(ahead[:2]):
            row = out[j * per : (j + 1) * per]
            row[KINDS.index(m["kind"])] = 1.0
            row[len(KINDS) :] = [
                m["side"] == "left",
                m["side"] == "right",
                (m["t_motion"] - t0) / HORIZON_US,
                (m["t_end"] - t0) / HORIZON_US,
            ]
        return out


__all__ = [
    "CAUSES",
    "CLASSES",
    "CUE_LABEL_FIELDS",
    "FORETELLS",
    "FORMAT",
    "FRAME_FIELDS",
    "FrameCue",
    "HEAD_FIELDS",
    "HORIZON_US",
    "INTENT_WIDTH",
    "KINDS",
    "MIN_HEAD_PIXELS",
    "MIN_VISIBLE",
    "SCENE_STATE_FIELDS",
    "SIDE_FILE",
    "SIGNAL_STATES",
    "STATE_FIELDS",
    "UNDER_WAY_US",
    "WorldFile",
    "side_file_path",
]
