"""What each vehicle did and why: its manoeuvres read off SUMO's recording (stop, go, slow
down, speed up, turn, lane change) and the cause of each, decided from what SUMO's models were
reacting to when the motion began:

- signal: a red or yellow signal controlling the vehicle's next stop line within stopping
  reach (stop, slow down), or its turning green while the vehicle waited first in line (go);
- leader: the vehicle ahead in its lane, close and slower or braking (stop, slow down), moving
  off or speeding up ahead of it (go, speed up), or slow enough to overtake (lane change);
- yield: a junction without signal where it has to give way (stop or yield line, a foe);
- own_plan: its route — the turn itself, slowing for it, a lane change to reach its lane,
  speeding up on a free road;
- none: none of these (SUMO's driver imperfection alone).

Times are scene seconds; cause_ref names the leader (SUMO id) or the signal link ("tls#k").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..data.world_schema import CAUSES, KINDS
from .traffic import STEP_S
from .world import Track

V_STOPPED = 0.3  # m/s: at a standstill below this
V_MOVING = 2.0  # m/s: a stop follows motion at least this fast
SMOOTH_S = 0.6  # acceleration averaged over this window (pedal, not SUMO's step)
EPISODE_ACCEL = 0.5  # m/s²: a slow-down / speed-up is an episode beyond this ...
EPISODE_DELTA_V = 2.0  # m/s: ... changing the speed by at least this
LEADER_TIME_GAP_S = 3.0  # a leader within this time gap (or LEADER_MIN_GAP_M) is close
LEADER_MIN_GAP_M = 15.0
YIELD_REACH_M = 40.0  # a junction it must yield at within this distance
TURN_REACH_M = 50.0  # slowing this close before its turn: for the turn


@dataclass
class Manoeuvre:
    """One change of motion and its cause; cues: what the vehicle showed for it, (kind, on,
    off) with kind indicator, hand, brake or brake_release."""

    kind: str
    side: str  # left / right for turns and lane changes
    t_motion: float  # when the motion begins to change (s, scene clock)
    t_end: float
    cause: str
    cause_ref: str = ""
    cues: list = field(default_factory=list)


def smoothed_accel(track: Track) -> np.ndarray:
    """Acceleration (m/s²) per step from the speed, averaged over SMOOTH_S."""
    v = track.speed
    k = max(1, int(round(SMOOTH_S / STEP_S / 2)))
    padded = np.concatenate([np.full(k, v[0]), v, np.full(k, v[-1])])
    return (padded[2 * k :] - padded[: -2 * k]) / (2 * k * STEP_S)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index ranges where mask holds."""
    edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return list(zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]))


def _value(track: Track, key: str, i: int):
    return track.trace.values[key][i]


def _dist_to_junction(track: Track, i: int, net) -> float:
    lane = net.lanes.get(_value(track, "lane", i))
    if lane is None or lane.kind != "road":
        return np.inf
    return max(0.0, lane.length - _value(track, "lanepos", i))


def _signal_ahead(track: Track, i: int, net) -> tuple[str, float, str]:
    """(state letter, distance, "tls#k") of the signal at the vehicle's next stop line; ""
    where its next junction has none."""
    tls, dist = _value(track, "tls", i), _value(track, "tls_dist", i)
    if not tls or not np.isfinite(dist) or dist > _dist_to_junction(track, i, net) + 1.0:
        return "", np.inf, ""
    return _value(track, "tls_state", i), float(dist), tls


def _leader(track: Track, i: int) -> tuple[str, float, float, float]:
    return (
        _value(track, "leader", i),
        float(_value(track, "gap", i)),
        float(_value(track, "leader_speed", i)),
        float(_value(track, "leader_accel", i)),
    )


def cause_of(kind: str, track: Track, i: int, net) -> tuple[str, str]:
    """The cause of a manoeuvre of `kind` beginning at step i → (cause, cause_ref)."""
    v = float(track.speed[i])
    leader, gap, lv, la = _leader(track, i)
    close = bool(leader) and gap < max(LEADER_MIN_GAP_M, LEADER_TIME_GAP_S * v)
    state, dist, tls = _signal_ahead(track, i, net)
    link_state, link_dir = _value(track, "link_state", i), _value(track, "link_dir", i)
    to_junction = _dist_to_junction(track, i, net)
    if kind == "turn":
        return "own_plan", ""
    if kind == "lane_change":
        slow = bool(leader) and gap < 50.0 and lv < v - 1.0
        return ("leader", leader) if slow else ("own_plan", "")
    inside = getattr(net.lanes.get(_value(track, "lane", i)), "kind", "") == "internal"
    if kind in ("stop", "slow_down"):
        braking_leader = close and (lv < v - 0.5 or la < -0.5 or lv < V_STOPPED)
        stopping_signal = state in ("r", "y", "u", "s") and dist <= max(30.0, v * v / 3.0 + 15.0)
        if braking_leader and (not stopping_signal or gap < dist - 5.0):
            return "leader", leader
        if stopping_signal:
            return "signal", tls
        if inside or (not tls and link_state in ("m", "s", "w") and to_junction < YIELD_REACH_M):
            return "yield", ""  # (waiting inside the junction: for a gap)
        if link_dir in ("l", "r", "L", "R") and to_junction < TURN_REACH_M:
            return "own_plan", ""
        return "none", ""
    recent = range(max(0, i - int(8.0 / STEP_S)), i)
    if (
        kind == "go"
        and leader
        and gap < 60.0
        and lv > v + 0.5
        and any(_value(track, "leader_speed", k) < V_STOPPED + 0.5 for k in recent)
    ):
        return "leader", leader  # the queue ahead moved off
    if kind == "speed_up" and close and la > 0.3:
        return "leader", leader
    if state in ("G", "g") and any(
        _value(track, "tls_state", k) in ("r", "u", "y") for k in recent
    ):
        return "signal", tls
    if kind == "go" and (inside or (not tls and link_state in ("m", "s", "w"))):
        return "yield", ""
    return ("own_plan", "") if kind == "speed_up" else ("none", "")


def detect(track: Track, net) -> list[Manoeuvre]:
    """The vehicle's manoeuvres within its recording, in time order, with their causes."""
    t = track.t0 + np.arange(len(track.speed)) * STEP_S
    found: list[tuple[str, str, int, int]] = _speed_events(track) + _path_events(track, net)
    out = []
    for kind, side, i, j in sorted(found, key=lambda f: (f[2], f[0])):
        # (a go's cause: what the vehicle saw as it moved off, one step after its start)
        cause, ref = cause_of(kind, track, min(i + 1, len(t) - 1) if kind == "go" else i, net)
        out.append(Manoeuvre(kind, side, float(t[i]), float(t[min(j, len(t) - 1)]), cause, ref))
    return out


def _speed_events(track: Track) -> list[tuple[str, str, int, int]]:
    """Stops, moving off, slow-downs and speed-ups: (kind, "", start, end step)."""
    v, a = track.speed, smoothed_accel(track)
    out = []
    stopped = v < V_STOPPED
    for s, e in _runs(stopped):
        if s > 0 and v[:s].max(initial=0) >= V_MOVING:
            b = s
            while b > 0 and a[b - 1] < -0.3:
                b -= 1
            if b > 0 or a[0] >= -0.3:
                out.append(("stop", "", b, s))
        if e < len(v) and e - s >= int(1.0 / STEP_S) and s > 0:
            f = e
            while f < len(v) - 1 and a[f] > 0.3:
                f += 1
            out.append(("go", "", e - 1, f))
    goes = [(s, e) for kind, _, s, e in out if kind == "go"]
    for sign, kind in ((-1, "slow_down"), (1, "speed_up")):
        for s, e in _runs(sign * a > EPISODE_ACCEL):
            if s == 0 or e >= len(v):
                continue
            if abs(v[min(e, len(v) - 1)] - v[s]) < EPISODE_DELTA_V or (stopped[s : e + 1].any()):
                continue
            if any(gs <= s <= ge for gs, ge in goes):  # (part of moving off)
                continue
            out.append((kind, "", s, e))
    return out


def _path_events(track: Track, net) -> list[tuple[str, str, int, int]]:
    """Turns (through a junction, left or right) and lane changes: (kind, side, start, end)."""
    lanes = track.trace.values["lane"]
    lat = track.trace.array("latpos")
    out = []
    k = 1
    while k < len(lanes):
        prev, cur = net.lanes.get(lanes[k - 1]), net.lanes.get(lanes[k])
        if prev is not None and cur is not None and cur.kind == "internal" and prev.kind == "road":
            conn = next((c for c in net.outgoing(prev.id) if c.via == cur.id), None)
            if conn is not None and conn.dir in ("l", "r", "L", "R"):
                end = k
                while end < len(lanes) and lanes[end].startswith(":"):
                    end += 1
                out.append(("turn", "left" if conn.dir in "lL" else "right", k, end))
        elif (
            prev is not None
            and cur is not None
            and prev.kind == cur.kind == "road"
            and prev.edge == cur.edge
            and prev.index != cur.index
        ):
            s = k - 1
            while s > 0 and abs(lat[s - 1]) > 0.05 and lanes[s - 1] == lanes[k - 1]:
                s -= 1
            e = k
            while e < len(lanes) - 1 and abs(lat[e]) > 0.05 and lanes[e] == lanes[k]:
                e += 1
            out.append(("lane_change", "left" if cur.index > prev.index else "right", s, e))
        k += 1
    return out


__all__ = ["CAUSES", "KINDS", "Manoeuvre", "cause_of", "detect", "smoothed_accel"]
