"""The cues a vehicle shows for what SUMO made it do, at the rates and lead times of real
drivers (CUE_SOURCES says where each number comes from). SUMO's own blinkers are those of a
perfect driver (always on, always early) and are not used; the lamps follow the motion:

- brake lamps light with the pedal, 0.2 s before the deceleration builds up (incandescent
  rise ~0.25 s), whenever the deceleration exceeds 1.3 m/s², never below 0.7 m/s² (coasting;
  UN R13-H's thresholds), in half of the braking episodes between the two; they stay on while
  held stopped (90 %, assumed) and go off 0.3–1.2 s before the vehicle moves off (assumed);
- indicators blink at 1.5 Hz, 50 % on (FMVSS 108 / UN R48: 60–120 flashes a minute). Lane
  changes: 30 % unsignalled, 35 % signalled only after the lateral motion has begun, 35 %
  signalled 0.5–4.5 s before it (naturalistic data: about 35/35/30 %; other studies 7–48 %
  unsignalled). Turns: 25 % of left and 29 % of right turns unsignalled, the signal on 2–8 s
  before the turn begins (no measured lead time found; the rules ask for 100 ft, "at least
  three seconds"), never before the vehicle passed the junction before; a vehicle stopping to
  wait for its turn shows the signal while waiting (it foretells the stop too);
- bicycles have no brake lamps; a cyclist gives a hand signal before 25 % of turns (studies
  say cyclists "often do not" signal; the rate is assumed);
- misleading cues: brake taps with no slowing and indicators with no manoeuvre (assumed
  rates, BRAKE_TAP_RATE and FALSE_SIGNAL_RATE; no measured rate was found).
"""

from __future__ import annotations

import numpy as np

from .manoeuvres import V_STOPPED, Manoeuvre, smoothed_accel
from .traffic import STEP_S
from .world import Track

LANE_CHANGE_UNSIGNALLED, LANE_CHANGE_LATE = 0.30, 0.35
TURN_UNSIGNALLED = {"left": 0.25, "right": 0.29}
TURN_LEAD_S = (2.0, 8.0)
LANE_CHANGE_LEAD_S = (0.5, 4.5)
LATE_SIGNAL_S = (0.3, 2.0)
BIKE_HAND_SIGNAL = 0.25
BRAKE_ON, BRAKE_OFF = 1.3, 0.7  # m/s², UN R13-H
BRAKE_LEAD_S = 0.2
HOLD_BRAKE_WHEN_STOPPED = 0.9
RELEASE_BEFORE_GO_S = (0.3, 1.2)
BRAKE_TAP_RATE = 0.01  # per second of cruising
FALSE_SIGNAL_RATE = 0.005  # per second of cruising

CUE_SOURCES = {
    "indicator rate": "FMVSS 108 via SAE J590b (60–120 flashes/min); UN R48 (90 ± 30 /min)",
    "lane changes unsignalled / late": "Safety Pilot FOT overtaking lane changes (~30 % none, "
    "half of signalled ones after the start); arXiv:2305.16401 "
    "(7 % none, 33 % after); Olsen 2003 (36 % none); "
    "Ponziani 2012, SAE 2012-01-0261 (48 %)",
    "lane change duration": "Lee, Olsen & Wierwille 2004, NHTSA DOT HS 809 702 (6.28 ± 2.0 s); "
    "SUMO's continuous lane change here takes 4 s (within that spread, "
    "shorter to fit 60–150 m blocks)",
    "turns unsignalled": "Sullivan, Bao, Goudy & Konet 2015, Accid. Anal. Prev. 74 (25 % left, "
    "29 % right); Ponziani 2012 (25 %)",
    "brake lamp thresholds": "UN R13-H §5.2.22.4 (no signal <= 0.7 m/s², required > 1.3 m/s²)",
    "brake lamp rise": "Sivak et al. 1993, UMTRI-93-37 (incandescent ~0.25 s to 90 %)",
    "decelerations": "SUMO Krauss model (decel 4.5 m/s², driver imperfection sigma 0.5)",
    "cyclists": "no brake lamps required; hand signals 'often not used' "
    "(Westerhuis & de Waard 2017)",
}


def _span(t: np.ndarray, a: float, b: float) -> np.ndarray:
    return (t >= a) & (t < b)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return list(zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]))


def brake_lamps(rng: np.random.Generator, track: Track, plan: list[Manoeuvre]) -> np.ndarray:
    """Brake lamps lit per step (see the module's doc); records the brake cue of each stop,
    slow-down and turn and the lamps' release before each go."""
    t = track.t0 + np.arange(len(track.speed)) * STEP_S
    decel = -smoothed_accel(track)
    lit = np.zeros(len(t), bool)
    for s, e in _runs(decel > BRAKE_OFF):
        episode = decel[s:e] > BRAKE_ON
        if rng.random() < 0.5:
            episode = np.ones(e - s, bool)  # the lamps light in the middle band too
        lit[s:e] |= episode
    for s, _ in _runs(lit.copy()):
        lit |= _span(t, t[s] - BRAKE_LEAD_S, t[s])
    for k, m in enumerate(plan):
        if m.kind == "stop" and rng.random() < HOLD_BRAKE_WHEN_STOPPED:
            go = next((g for g in plan[k + 1 :] if g.kind == "go"), None)
            release = go.t_motion - rng.uniform(*RELEASE_BEFORE_GO_S) if go else t[-1] + 1.0
            lit |= _span(t, m.t_end, release)
            if go is not None:
                go.cues.append(("brake_release", float(release), float(release)))
    for m in plan:
        if m.kind in ("stop", "slow_down", "turn"):
            on = np.nonzero(lit & _span(t, m.t_motion - BRAKE_LEAD_S, m.t_end + STEP_S))[0]
            if len(on):
                m.cues.append(("brake", float(t[on[0]]), float(t[on[-1]])))
    return lit


def _approach_start(track: Track, t_turn: float) -> float:
    """When the vehicle entered the street it turns from (-inf before its recording)."""
    lanes = track.trace.values["lane"]
    k = min(track.index(t_turn) - 1, len(lanes) - 1)
    while k >= 0 and lanes[k].startswith(":"):
        k -= 1
    if k < 0:
        return -np.inf
    edge = lanes[k].rsplit("_", 1)[0]
    while k > 0 and lanes[k - 1].rsplit("_", 1)[0] == edge:
        k -= 1
    return -np.inf if k == 0 else track.t0 + k * STEP_S


def indicators(
    rng: np.random.Generator, track: Track, plan: list[Manoeuvre]
) -> tuple[np.ndarray, np.ndarray]:
    """Indicators (or a cyclist's hand signal) active per step, left and right."""
    t = track.t0 + np.arange(len(track.speed)) * STEP_S
    active = {"left": np.zeros(len(t), bool), "right": np.zeros(len(t), bool)}
    bike = track.category == "vehicle.bicycle"
    for k, m in enumerate(plan):
        if m.kind not in ("turn", "lane_change"):
            continue
        if bike and (m.kind != "turn" or rng.random() >= BIKE_HAND_SIGNAL):
            continue
        if not bike and rng.random() < (
            TURN_UNSIGNALLED[m.side] if m.kind == "turn" else LANE_CHANGE_UNSIGNALLED
        ):
            continue
        if m.kind == "turn":
            on = max(m.t_motion - rng.uniform(*TURN_LEAD_S), _approach_start(track, m.t_motion))
            off = m.t_motion if bike else m.t_end + rng.uniform(0.0, 1.0)
            for prior in plan[:k]:  # a wait for the turn: the same signal foretells the stop
                if prior.kind == "stop" and on <= prior.t_end <= m.t_motion:
                    prior.cues.append(("hand" if bike else "indicator", float(on), float(off)))
        elif rng.random() < LANE_CHANGE_LATE / (1 - LANE_CHANGE_UNSIGNALLED):
            on, off = m.t_motion + rng.uniform(*LATE_SIGNAL_S), m.t_end + rng.uniform(0.0, 0.5)
        else:
            on, off = m.t_motion - rng.uniform(*LANE_CHANGE_LEAD_S), m.t_end + rng.uniform(0.0, 0.5)
        m.cues.append(("hand" if bike else "indicator", float(on), float(off)))
        active[m.side] |= _span(t, on, off)
    return active["left"], active["right"]


def misleading(
    rng: np.random.Generator, track: Track, plan: list[Manoeuvre]
) -> list[tuple[str, float, float]]:
    """Brake taps with no slowing and indicators with no manoeuvre while cruising; sets them
    on the track's lamps → their (kind, on, off)."""
    if track.category == "vehicle.bicycle":
        return []
    t = track.t0 + np.arange(len(track.speed)) * STEP_S
    busy = track.brake | track.left | track.right | (track.speed < V_STOPPED)
    for m in plan:
        start = min([m.t_motion] + [on for _, on, _ in m.cues])
        busy |= _span(t, start - 1.0, m.t_end + 1.0)
    out = []
    for rate, kind in ((BRAKE_TAP_RATE, "tap"), (FALSE_SIGNAL_RATE, "signal")):
        at = t[0] + rng.exponential(1 / rate)
        while at < t[-1]:
            dur = rng.uniform(0.3, 1.0) if kind == "tap" else rng.uniform(2.0, 6.0)
            window = _span(t, at, at + dur)
            side = "left" if rng.random() < 0.5 else "right"
            if window.any() and not (window & busy).any():
                target = track.brake if kind == "tap" else getattr(track, side)
                target[window] = True
                out.append(
                    ("brake" if kind == "tap" else f"indicator_{side}", float(at), float(at + dur))
                )
            at += dur + rng.exponential(1 / rate)
    return out


def apply_cues(rng: np.random.Generator, track: Track, plan: list[Manoeuvre]) -> None:
    """Set the track's lamps and indicators and the cues of its manoeuvres."""
    if track.category != "vehicle.bicycle":
        track.brake = brake_lamps(rng, track, plan)
    track.left, track.right = indicators(rng, track, plan)
    track.manoeuvres = plan
    track.misleading = misleading(rng, track, plan)
    track.refresh()


__all__ = ["BRAKE_OFF", "BRAKE_ON", "CUE_SOURCES", "apply_cues"]
