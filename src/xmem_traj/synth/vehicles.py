"""Vehicles of the synthetic world: a plan of manoeuvres over the scene, the motion it gives,
and the cues a real vehicle shows for it — at the rates and lead times of real traffic.

Each vehicle cruises and, every so often (MANOEUVRE_GAP_S on average), starts a manoeuvre:
a lane change, a turn into the next side street on its side, a stop (and later a start), a
slow-down or a speed-up. Its cues (CUE_SOURCES says where each number comes from):

- indicators blink at 1.5 Hz, 50 % on (FMVSS 108 / UN R48: 60–120 flashes a minute). Lane
  changes: 30 % unsignalled, 35 % signalled only after the lateral motion has begun, 35 %
  signalled 0.5–4.5 s before it (naturalistic freeway data: about 35/35/30 %; other studies
  7–48 % unsignalled). Turns, into the road's side streets: 27 % unsignalled (25 % left /
  29 % right), signal on 2–8 s before turning (no measured lead time found; the rules ask for
  100–300 ft, "at least three seconds"), never before passing the last street on that side,
  the vehicle slowing over the last 1–3 s — or, before 80 % of left and 50 % of right turns
  (assumed), stopping at the junction to wait 2–10 s for a gap with the indicator on;
- brake lamps light with the pedal, 0.2 s before the deceleration builds up (incandescent
  rise ~0.25 s), whenever the deceleration exceeds 1.3 m/s², never below 0.7 m/s² (coasting;
  UN R13-H's thresholds), half the time in between; they stay on while held stopped (90 %,
  assumed) and go off 0.3–1.2 s before the vehicle moves off (assumed);
- bicycles have no brake lamps; a cyclist gives a hand signal before 25 % of turns (studies
  say cyclists "often do not" signal; the rate is assumed);
- misleading cues: brake taps with no slowing and indicators with no manoeuvre (assumed
  rates, BRAKE_TAP_RATE and FALSE_SIGNAL_RATE; no measured rate was found).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .roads import FORWARD_LANES, ONCOMING_LANES, STREET_HALF_WIDTH, Junction, Road
from .world import DT, Track, smoothstep

MANOEUVRE_GAP_S = 2.5          # mean cruise time between manoeuvres (assumed, urban traffic)
MANOEUVRES = {"lane_change": 0.2, "turn": 0.45, "stop": 0.15, "slow_down": 0.1, "speed_up": 0.1}
BIKE_MANOEUVRES = {"turn": 0.5, "stop": 0.25, "slow_down": 0.125, "speed_up": 0.125}
LANE_CHANGE_UNSIGNALLED, LANE_CHANGE_LATE = 0.30, 0.35
TURN_UNSIGNALLED = 0.27
BIKE_HAND_SIGNAL = 0.25
WAIT_BEFORE_LEFT_TURN = 0.8    # stop and wait for a gap in oncoming traffic (assumed)
WAIT_BEFORE_RIGHT_TURN = 0.5   # stop and wait for crossing pedestrians (assumed)
HOLD_BRAKE_WHEN_STOPPED = 0.9
BRAKE_TAP_RATE = 0.01          # per second of cruising
FALSE_SIGNAL_RATE = 0.005      # per second of cruising

CUE_SOURCES = {
    "indicator rate": "FMVSS 108 via SAE J590b (60–120 flashes/min); UN R48 (90 ± 30 /min)",
    "lane changes unsignalled / late": "Safety Pilot FOT overtaking lane changes (~30 % none, "
                                       "half of signalled ones after the start); arXiv:2305.16401 "
                                       "(7 % none, 33 % after); Olsen 2003 (36 % none); "
                                       "Ponziani 2012, SAE 2012-01-0261 (48 %)",
    "lane change duration": "Lee, Olsen & Wierwille 2004, NHTSA DOT HS 809 702 (6.28 ± 2.0 s)",
    "turns unsignalled": "Sullivan, Bao, Goudy & Konet 2015, Accid. Anal. Prev. 74 (25 % left, "
                         "29 % right); Ponziani 2012 (25 %)",
    "brake lamp thresholds": "UN R13-H §5.2.22.4 (no signal <= 0.7 m/s², required > 1.3 m/s²)",
    "brake lamp rise": "Sivak et al. 1993, UMTRI-93-37 (incandescent ~0.25 s to 90 %)",
    "decelerations": "comfortable ~2 m/s² (Wu et al. 2009); AASHTO design 3.4 m/s²",
    "cyclists": "no brake lamps required; hand signals 'often not used' (Westerhuis & de Waard 2017)",
}


@dataclass
class Manoeuvre:
    """One planned change of motion and the cue the vehicle gave for it."""

    kind: str                 # lane_change, turn, stop, go, slow_down, speed_up
    side: str                 # "left" / "right" for lane changes, turns and stops to turn, else ""
    t_motion: float           # when the motion starts to change (s, scene clock)
    t_end: float
    speed: float              # speed at t_end (turns: the turning speed, reached at t_arc)
    t_arc: float | None = None  # turns: when the arc into the side street begins
    radius: float = 0.0         # turns: the arc's radius (m)
    street: tuple[Junction, int] | None = None  # turns: the junction and the street's side
    signal_after: float = -np.inf  # turns: when the vehicle has passed the last street before
                                   # its own on that side (no one signals for a street it passes)
    # The cues it gave: (kind, on, off) with kind "indicator", "hand", "brake" or
    # "brake_release" (the lamps going off before moving off; on == off).
    cues: list = field(default_factory=list)


def _plan(rng, times: np.ndarray, road: Road, s0: float, lane: float, v0: float,
          bike: bool) -> list[Manoeuvre]:
    """The manoeuvres of one vehicle, in time order (motion only; cues come after). Turns are
    into the road's side streets: the vehicle cruises on to the next junction with a street on
    the side it turns to, slows (or stops and waits) and turns there."""
    table = BIKE_MANOEUVRES if bike else MANOEUVRES
    kinds, weights = list(table), np.array(list(table.values()))
    plan: list[Manoeuvre] = []
    t, t_stop = times[0] + rng.exponential(MANOEUVRE_GAP_S), times[-1] - 0.5
    inner = abs(lane) < 3.5
    v = v0
    # Where the vehicle is: u_ref metres along its way from s0 at t_ref, cruising at v since.
    # (Speed ramps are smoothsteps, so a ramp's distance is its duration × the mean speed.)
    t_ref, u_ref = float(times[0]), 0.0
    while t < t_stop:
        kind = str(rng.choice(kinds, p=weights / weights.sum()))
        u_now = u_ref + v * (t - t_ref)
        # Ramps are smoothsteps: peak (de)celeration 1.5× the mean drawn here.
        if kind == "lane_change" and v > 3.0:
            dur = float(np.clip(rng.normal(6.28, 2.0), 3.5, 9.0))
            plan.append(Manoeuvre(kind, "right" if inner else "left", t, t + dur, v))
            inner = not inner
        elif kind == "turn" and v > 3.0:
            turn = _turn_at_junction(rng, road, s0, lane, inner, bike, v, t, u_now)
            if turn is None:  # no junction ahead on that side: it drives on
                t += 1.0
                continue
            plan += turn
            break  # the vehicle leaves the road
        elif kind == "stop" and v > 2.0:
            t_still = t + v / rng.uniform(1.5, 3.4)
            plan.append(Manoeuvre("stop", "", t, t_still, 0.0))
            t_go = t_still + rng.uniform(2.0, 8.0)
            t_moving = t_go + v0 / rng.uniform(1.0, 2.0)
            plan.append(Manoeuvre("go", "", t_go, t_moving, v0))
            t_ref, u_ref = t_moving, u_now + v * (t_still - t) / 2 + v0 * (t_moving - t_go) / 2
            v = v0
        elif kind == "slow_down" and v > 4.0:
            v_new = v * rng.uniform(0.4, 0.7)
            dur = (v - v_new) / rng.uniform(0.6, 2.5)
            plan.append(Manoeuvre(kind, "", t, t + dur, v_new))
            t_ref, u_ref, v = t + dur, u_now + (v + v_new) / 2 * dur, v_new
        elif kind == "speed_up" and v < 13.0:
            v_new = min(14.0, v + rng.uniform(2.0, 5.0))
            dur = (v_new - v) / rng.uniform(0.8, 1.8)
            plan.append(Manoeuvre(kind, "", t, t + dur, v_new))
            t_ref, u_ref, v = t + dur, u_now + (v + v_new) / 2 * dur, v_new
        else:
            t += 1.0
            continue
        t = plan[-1].t_end + rng.exponential(MANOEUVRE_GAP_S)
    return plan


def _turn_at_junction(rng, road: Road, s0: float, lane: float, inner: bool, bike: bool, v: float,
                      t: float, u_now: float) -> list[Manoeuvre] | None:
    """A turn planned at time t (the vehicle u_now metres along, cruising at v): into the first
    side street ahead on its side — left from the inner lane, right from the outer one — that
    leaves room to slow down or stop before it. → [turn] or [stop, turn] (waiting for a gap);
    None where no junction ahead has a street there."""
    direction = 1.0 if lane < 0 else -1.0
    v_turn = float(min(v, rng.uniform(3.5, 6.0)))
    side = "left" if inner and not bike else "right"
    own = -1 if lane < 0 else 1
    street_side = own if side == "right" else -own
    radius = rng.uniform(6.0, 10.0) if side == "right" else rng.uniform(10.0, 15.0)
    wait = rng.random() < (WAIT_BEFORE_LEFT_TURN if side == "left" else WAIT_BEFORE_RIGHT_TURN)
    if wait:  # stop just before the arc, then pull into it (0 → v_turn in 1 s)
        t_brake = v / rng.uniform(1.5, 3.4)
        approach = v * t_brake / 2 + v_turn / 2
    else:
        t_slow = max(1.0, min(3.0, (v - v_turn) / rng.uniform(1.0, 2.5)))
        approach = (v + v_turn) / 2 * t_slow
    keep = 1.5 if side == "left" else -1.5  # the street's lane on the driver's right
    for junction in (road.junctions if direction > 0 else road.junctions[::-1]):
        if street_side not in junction.sides:
            continue
        u_arc = direction * (junction.s + direction * keep - s0) - radius
        cruise = u_arc - u_now - approach
        if cruise < v * 0.5:  # behind, or too close to slow down for
            continue
        t_motion = t + cruise / v
        street = (junction, street_side)
        if wait:
            t_still = t_motion + t_brake
            t_go = t_still + rng.uniform(2.0, 10.0)
            return [Manoeuvre("stop", side, t_motion, t_still, 0.0),  # (a stop to turn: its side)
                    Manoeuvre("turn", side, t_go, t_go + 5.0, v_turn, t_arc=t_go + 1.0,
                              radius=radius, street=street)]
        t_arc = t_motion + t_slow
        return [Manoeuvre("turn", side, t_motion, t_arc + 4.0, v_turn, t_arc=t_arc, radius=radius,
                          street=street)]
    return None


def _speed(times: np.ndarray, v0: float, plan: list[Manoeuvre]) -> np.ndarray:
    """Speed profile of the plan: smooth ramps to each manoeuvre's speed."""
    v = np.full(len(times), v0)
    level = v0
    for m in plan:
        if m.kind == "lane_change":
            continue
        ramp_end = m.t_arc if m.kind == "turn" else m.t_end
        u = smoothstep((times - m.t_motion) / max(ramp_end - m.t_motion, 1e-3))
        i = times >= m.t_motion
        v[i] = level + (m.speed - level) * u[i]
        level = m.speed
    return v


def _lateral(times: np.ndarray, lane: float, plan: list[Manoeuvre]) -> np.ndarray:
    """Lateral offset d(t): lane changes move between the two lanes of the direction."""
    lanes = FORWARD_LANES if lane < 0 else ONCOMING_LANES
    d = np.full(len(times), lane)
    current = lane
    for m in plan:
        if m.kind != "lane_change":
            continue
        other = lanes[1] if current == lanes[0] else lanes[0]
        u = smoothstep((times - m.t_motion) / (m.t_end - m.t_motion))
        i = times >= m.t_motion
        d[i] = current + (other - current) * u[i]
        current = other
    return d


def _cues(rng, times: np.ndarray, v: np.ndarray, plan: list[Manoeuvre], bike: bool) -> dict:
    """Cue intervals per manoeuvre (at the studies' rates) and the misleading ones → boolean
    arrays brake, left, right (indicator or hand signal active)."""
    n = len(times)
    brake, left, right = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool)
    decel = -np.gradient(v, DT)

    def span(a: float, b: float) -> np.ndarray:
        return (times >= a) & (times < b)
    for k, m in enumerate(plan):
        if m.kind in ("lane_change", "turn"):
            unsignalled = TURN_UNSIGNALLED if m.kind == "turn" else LANE_CHANGE_UNSIGNALLED
            if bike:
                unsignalled = 1.0 - BIKE_HAND_SIGNAL
            if rng.random() >= unsignalled:
                if m.kind == "turn":  # 2–8 s before the arc (or before stopping to wait); a
                    # cyclist's hand is back on the bars at the arc
                    waited = k > 0 and plan[k - 1].kind == "stop" and plan[k - 1].t_end <= m.t_motion
                    on = max(m.signal_after, plan[k - 1].t_motion - rng.uniform(0.0, 3.0) if waited
                             else m.t_arc - rng.uniform(2.0, 8.0))
                    off = m.t_arc if bike else m.t_arc + 2.0
                elif rng.random() < LANE_CHANGE_LATE / (1 - LANE_CHANGE_UNSIGNALLED):
                    on, off = m.t_motion + rng.uniform(0.3, 2.0), m.t_end + rng.uniform(0.0, 0.5)
                else:
                    on, off = m.t_motion - rng.uniform(0.5, 4.5), m.t_end + rng.uniform(0.0, 0.5)
                m.cues.append(("hand" if bike else "indicator", on, off))
                if m.kind == "turn" and waited:  # the same signal foretells the stop before it
                    plan[k - 1].cues.append(("hand" if bike else "indicator", on, off))
                (left if m.side == "left" else right)[span(on, off)] = True
        if bike:
            continue
        if m.kind in ("stop", "slow_down", "turn"):
            braking = decel > 1.3
            mid = (decel > 0.7) & (decel <= 1.3)
            if mid.any() and rng.random() < 0.5:
                braking |= mid
            braking &= span(m.t_motion, m.t_end)
            if braking.any():
                first = times[np.argmax(braking)]
                lit = braking | span(first - 0.2, first)
                if m.kind == "stop" and rng.random() < HOLD_BRAKE_WHEN_STOPPED:
                    go = plan[k + 1]
                    release = go.t_motion - rng.uniform(0.3, 1.2)
                    lit |= span(first, release)
                    go.cues.append(("brake_release", release, release))
                brake |= lit
                m.cues.append(("brake", first - 0.2, float(times[np.nonzero(lit)[0][-1]])))
    misleading = _misleading(rng, times, plan, brake, left, right, bike)
    return {"brake": brake, "left": left, "right": right, "misleading": misleading}


def _misleading(rng, times, plan, brake, left, right, bike: bool) -> list[tuple[str, float, float]]:
    """Brake taps with no slowing and indicators with no manoeuvre, while cruising → their
    (kind, on, off)."""
    out = []
    busy = np.zeros(len(times), bool)
    for m in plan:
        start = min([m.t_motion] + [on for _, on, _ in m.cues])
        busy |= (times >= start - 1.0) & (times < m.t_end + 1.0)
    for rate, kind in ((BRAKE_TAP_RATE, "tap"), (FALSE_SIGNAL_RATE, "signal")):
        if bike:
            break
        t = times[0] + rng.exponential(1 / rate)
        while t < times[-1]:
            dur = rng.uniform(0.3, 1.0) if kind == "tap" else rng.uniform(2.0, 6.0)
            window = (times >= t) & (times < t + dur)
            if not (window & busy).any():
                side = "left" if rng.random() < 0.5 else "right"
                target = brake if kind == "tap" else (left if side == "left" else right)
                target[window] = True
                out.append(("brake" if kind == "tap" else f"indicator_{side}", float(t), float(t + dur)))
            t += dur + rng.exponential(1 / rate)
    return out


def simulate_vehicle(rng, road: Road, times: np.ndarray, category: str, s0: float, lane: float,
                     v0: float) -> Track:
    """A lane-following vehicle with its plan of manoeuvres and their cues."""
    bike = category == "vehicle.bicycle"
    direction = 1.0 if lane < 0 else -1.0
    plan = _plan(rng, times, road, s0, lane, v0, bike)
    v = _speed(times, v0, plan)
    d = _lateral(times, lane, plan)
    s = s0 + direction * np.concatenate([[0.0], np.cumsum(v[:-1] * DT)])
    x, y, h = road.pose(s, d)
    dd = np.gradient(d, DT)
    yaw = h + (0.0 if direction > 0 else np.pi) + np.arctan2(direction * dd, np.maximum(v, 0.5))
    turn = plan[-1] if plan and plan[-1].kind == "turn" else None
    if turn is not None:
        turn.signal_after = _passed_previous_street(road, times, s, direction, turn)
    if turn is not None and turn.t_arc < times[-2]:
        i_arc = int(np.searchsorted(times, turn.t_arc))
        x, y, yaw = _arc_into(x, y, np.unwrap(yaw), v, i_arc, turn.radius,
                              -1.0 if turn.side == "right" else 1.0, road.street_heading(*turn.street))
    cues = _cues(rng, times, v, plan, bike)
    return Track(category, float(times[0]), x, y, yaw, v, cues["brake"], cues["left"], cues["right"],
                 manoeuvres=plan, misleading=cues["misleading"])


def _passed_previous_street(road: Road, times: np.ndarray, s: np.ndarray, direction: float,
                            turn: Manoeuvre) -> float:
    """When the vehicle (at s over times) has passed the last side street before the one it
    turns into, on the same side (-inf where there is none)."""
    junction, side = turn.street
    own_s = junction.s
    before = [j.s for j in road.junctions if side in j.sides and direction * (own_s - j.s) > 0]
    if not before:
        return -np.inf
    last = max(before, key=lambda js: direction * js)
    past = np.nonzero(direction * (s - last) > STREET_HALF_WIDTH)[0]
    return float(times[past[0]]) if len(past) else float(times[-1])


def _arc_into(x, y, yaw, v, i0, radius, sign, heading):
    """From step i0 on: a circular arc of the given radius until the vehicle heads along
    `heading` (the side street's direction, about 90° from the road's), then straight."""
    x, y, yaw = x.copy(), y.copy(), yaw.copy()
    left = sign * (((heading - yaw[i0]) + np.pi) % (2 * np.pi) - np.pi)  # angle still to turn
    for i in range(i0 + 1, len(x)):
        step = min(v[i - 1] / radius * DT, max(left, 0.0))
        left -= step
        yaw[i] = yaw[i - 1] + sign * step
        x[i] = x[i - 1] + np.cos(yaw[i - 1]) * v[i - 1] * DT
        y[i] = y[i - 1] + np.sin(yaw[i - 1]) * v[i - 1] * DT
    return x, y, yaw


__all__ = ["CUE_SOURCES", "Manoeuvre", "simulate_vehicle"]
