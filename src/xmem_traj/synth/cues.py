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
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

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


__all__ = ["CLASSES", "FORMAT", "FRAME_FIELDS", "FrameCue", "ORACLE_FIELDS", "SIDE_FILE",
           "classify", "cue_seen"]
