"""The synthetic world's side file: its schema (the generator, synth/, writes it; the reader,
data/world_file.py, reads it). It says what caused what.

`<dataroot>/<version>/xmem_traj_world.json` (beside the 13 tables; the devkit ignores it) holds

- frames: per camera frame (sample_data token), every annotated agent in view: FRAME_FIELDS
  (its lamps lit now, indicators active, the faces the camera sees, the unoccluded share);
- heads: per camera frame, the signal heads in view: HEAD_FIELDS (state shown, whether their
  lamps face the camera, pixels);
- agents: per instance token its category, its true states every `dt` µs from `t0`
  (STATE_FIELDS: controlling signal, distance to its stop line, that signal's head, leader,
  gap, leader speed and braking, own lamps, speed) and its manoeuvres (kind, side, t_motion,
  t_end in µs, cause among CAUSES, cause_ref: the leader's instance token or "head:<index>",
  the cues it gave) and misleading cues;
- signal_heads: per head index its signal, link, lane and pose;
- sources: where every rate of the world comes from.

This module imports nothing from synth/.
"""

from __future__ import annotations

from typing import Sequence

SIDE_FILE = "xmem_traj_world.json"
FORMAT = 2
FRAME_FIELDS = (
    "instance",
    "brake",
    "left",
    "right",
    "left_active",
    "right_active",
    "back",
    "front",
    "left_side",
    "right_side",
    "visible",
)
HEAD_FIELDS = ("head", "state", "facing", "pixels")
STATE_FIELDS = (
    "signal",
    "stop_line_m",
    "head",
    "leader",
    "gap_m",
    "leader_speed",
    "leader_braking",
    "brake",
    "left",
    "right",
    "speed",
)
SIGNAL_STATES = ("none", "red", "yellow", "green", "off")  # codes of "signal" and "state"
CAUSES = ("signal", "leader", "yield", "own_plan", "none")
KINDS = ("lane_change", "turn", "stop", "go", "slow_down", "speed_up")
CLASSES = ("foretold", "no_cue", "under_way", "no_change")
#: Per window frame, the true states of the agent (scene_state's columns): its controlling
#: signal's colour (one-hot; all zero: none), metres to that signal's stop line (0: none), its
#: head in view of the record's camera, a leader, the gap to it (m), its speed (m/s), its brake
#: lamps lit, the agent's own brake lamps and indicators (active), its speed (m/s).
SCENE_STATE_FIELDS = (
    "signal_red",
    "signal_yellow",
    "signal_green",
    "signal_off",
    "stop_line_m",
    "head_in_view",
    "leader",
    "leader_gap_m",
    "leader_speed",
    "leader_braking",
    "brake",
    "left",
    "right",
    "speed",
)
#: Per window frame, what a perfect eye reads in the record's camera (cue_labels' columns): the
#: agent's own brake lamps, left and right indicators seen, the agent in view, its controlling
#: signal's head seen face on and the colour it shows, its leader in view and that leader's brake
#: lamps seen.
CUE_LABEL_FIELDS = (
    "brake_seen",
    "left_seen",
    "right_seen",
    "in_view",
    "head_seen",
    "head_red",
    "head_yellow",
    "head_green",
    "leader_seen",
    "leader_brake_seen",
)
UNDER_WAY_US = 500_000  # one key-frame interval
HORIZON_US = 6_000_000
MIN_VISIBLE = 0.25  # an agent's cue counts as seen where this much of it shows
MIN_HEAD_PIXELS = 6  # a head's colour counts as seen from this many pixels on
FORETELLS = {
    "stop": ("red", "yellow"),
    "slow_down": ("red", "yellow"),
    "go": ("green",),
    "speed_up": ("green",),
}
INTENT_WIDTH = 2 * (len(KINDS) + 4)


class FrameCue:
    """One agent's row of a frame (FRAME_FIELDS after the instance)."""

    __slots__ = FRAME_FIELDS[1:]

    def __init__(self, row: Sequence):
        for name, value in zip(FRAME_FIELDS[1:10], row[1:10]):
            setattr(self, name, bool(value))
        self.visible = float(row[10])

    @classmethod
    def of(cls, row: Sequence) -> "FrameCue":
        return cls(row)

    def seen(self, category: str) -> dict[str, bool]:
        """The cues a perfect eye reads off this frame: brake lamps on the visible rear, lit
        indicators on any visible face of their side (a cyclist's arm, held out)."""
        shown = self.visible >= MIN_VISIBLE
        if category == "vehicle.bicycle":
            return {
                "brake_seen": False,
                "left_seen": shown and self.left_active,
                "right_seen": shown and self.right_active,
            }
        face = {
            "left": self.back or self.front or self.left_side,
            "right": self.back or self.front or self.right_side,
        }
        return {
            "brake_seen": shown and self.brake and self.back,
            "left_seen": shown and self.left and face["left"],
            "right_seen": shown and self.right and face["right"],
        }


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
]
