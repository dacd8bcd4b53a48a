"""A driving world for the synthetic nuScenes: on a stretch of the city's roads (roads.py), an
ego car and agents whose behaviour is partly foretold by what a camera sees.

Vehicles and their cues are in vehicles.py; pedestrians (who stop and face the road before
crossing, or face it and walk on), parked cars and the ego are here.

Coordinates: global metres, x east, y north, yaw counter-clockwise from +x. Ground is z = 0.
Traffic keeps right: forward lanes have d < 0 (right of the centreline), oncoming d > 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .roads import FORWARD_LANES, PARKING_D, SIDEWALK_D, Road

DT = 0.05            # simulation step (s)
BLINK_PERIOD = 1 / 1.5   # indicators flash at 1.5 Hz (90 a minute) ...
BLINK_DUTY = 0.5         # ... half of each period lit

SIZES = {  # nuScenes size order: width, length, height
    "vehicle.car": (1.9, 4.6, 1.6),
    "vehicle.truck": (2.5, 7.5, 3.1),
    "vehicle.bicycle": (0.7, 1.8, 1.6),
    "human.pedestrian.adult": (0.65, 0.6, 1.75),
}


@dataclass
class Track:
    """One agent's simulated motion on the DT grid starting at t0, and its cue states."""

    category: str
    t0: float
    x: np.ndarray
    y: np.ndarray
    yaw: np.ndarray
    speed: np.ndarray
    brake: np.ndarray            # brake lamps lit
    left: np.ndarray             # left indicator (or cyclist's hand signal) active
    right: np.ndarray
    behaviour: str = "cruise"
    parked: bool = False
    colour: tuple[int, int, int] = (128, 128, 128)
    manoeuvres: list = field(default_factory=list)   # vehicles: their planned Manoeuvres
    misleading: list = field(default_factory=list)   # cues with no manoeuvre: (kind, on, off)
    facing_road: np.ndarray | None = None            # pedestrians: turned to the road

    def __post_init__(self):
        # Each indicator activation starts its own blink cycle: the time it came on, per step.
        self._onset = {side: _run_starts(getattr(self, side), self.t0) for side in ("left", "right")}

    @property
    def size(self) -> tuple[float, float, float]:
        return SIZES[self.category]

    def at(self, t: float) -> dict:
        """Linearly interpolated state at time t (yaw unwrapped first); cue states at the
        nearest step, indicators lit only in the on-phase of their blink."""
        f = (t - self.t0) / DT
        i = int(np.clip(np.floor(f), 0, len(self.x) - 2))
        a = float(np.clip(f - i, 0.0, 1.0))
        yaw = np.unwrap(self.yaw[i:i + 2])
        k = i if a < 0.5 else i + 1
        state = {"x": self.x[i] * (1 - a) + self.x[i + 1] * a,
                 "y": self.y[i] * (1 - a) + self.y[i + 1] * a,
                 "yaw": yaw[0] * (1 - a) + yaw[1] * a,
                 "speed": self.speed[i] * (1 - a) + self.speed[i + 1] * a,
                 "brake": bool(self.brake[k]),
                 "facing_road": bool(self.facing_road[k]) if self.facing_road is not None else False}
        for side in ("left", "right"):
            active = bool(getattr(self, side)[k])
            state[f"{side}_active"] = active
            state[side] = active and ((t - self._onset[side][k]) % BLINK_PERIOD) < BLINK_DUTY * BLINK_PERIOD
        return state


def _run_starts(active: np.ndarray, t0: float) -> np.ndarray:
    """For each step, the time its run of True values began (nan where False)."""
    starts = np.full(len(active), np.nan)
    begin = None
    for i, on in enumerate(active):
        if on and begin is None:
            begin = t0 + i * DT
        elif not on:
            begin = None
        if on:
            starts[i] = begin
    return starts


def smoothstep(u):
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3 - 2 * u)


def simulate_pedestrian(rng, road: Road, times: np.ndarray, s0: float, side: float) -> Track:
    """Walks along the sidewalk; may stop, face the road, and cross (or face it and walk on).
    Nine in ten crossers look at the traffic for about a second first (Rasouli et al. 2017:
    "more than 90 %"); the others step out at once."""
    n = len(times)
    along = rng.choice([-1.0, 1.0])
    v_walk = rng.uniform(0.9, 1.6) if rng.random() > 0.2 else 0.0
    behaviour = rng.choice(["walk", "cross", "fake_cross"], p=[0.45, 0.4, 0.15])
    t_face = rng.uniform(times[0] + 3.0, times[-1] - 4.0)
    looks = behaviour == "fake_cross" or rng.random() < 0.9
    face_dur = rng.uniform(0.8, 1.8) if looks else 0.3
    d0 = side * SIDEWALK_D
    s = s0 + along * v_walk * np.clip(times - times[0], 0, None)
    if behaviour != "walk":
        s_stop = s0 + along * v_walk * (t_face - times[0])
        s = np.where(times < t_face, s, s_stop)
    x, y, h = road.pose(s, np.full(n, d0))
    yaw = h + (0.0 if along > 0 else np.pi)
    speed = np.where(times < t_face, v_walk, 0.0) if behaviour != "walk" else np.full(n, v_walk)
    toward_road = h + (-np.pi / 2 if side > 0 else np.pi / 2)
    if behaviour != "walk":
        turning = smoothstep((times - t_face) / 0.5)
        yaw = yaw + _angle_diff(toward_road, yaw) * turning
        start = t_face + face_dur
        if behaviour == "cross":
            v_cross = rng.uniform(1.2, 1.8)
            dist = np.clip(times - start, 0, None) * v_cross
            dist = np.minimum(dist, 2 * SIDEWALK_D)
            x = x + np.cos(yaw) * dist
            y = y + np.sin(yaw) * dist
            speed = np.where((times >= start) & (dist < 2 * SIDEWALK_D), v_cross, speed)
        else:  # faces the road, then turns back and walks on
            back = smoothstep((times - start) / 0.5)
            yaw = yaw + _angle_diff(h + (0.0 if along > 0 else np.pi), yaw) * back
            walk = np.clip(times - start - 0.5, 0, None) * max(v_walk, 1.0)
            x = x + np.cos(yaw) * walk
            y = y + np.sin(yaw) * walk
            speed = np.where(times >= start + 0.5, max(v_walk, 1.0), speed)
    off = np.zeros(n, bool)
    facing = (times >= t_face) & (times < t_face + face_dur) if behaviour != "walk" else off.copy()
    return Track("human.pedestrian.adult", float(times[0]), x, y, yaw, speed, off, off.copy(),
                 off.copy(), behaviour=str(behaviour), facing_road=facing)


def _angle_diff(a, b):
    return (a - b + np.pi) % (2 * np.pi) - np.pi


def simulate_parked(rng, road: Road, times: np.ndarray, s0: float, side: float) -> Track:
    n = len(times)
    x, y, h = road.pose(np.full(n, s0), np.full(n, side * PARKING_D))
    yaw = h + (0.0 if side < 0 else np.pi)
    off = np.zeros(n, bool)
    return Track("vehicle.car", float(times[0]), x, y, yaw, np.zeros(n), off, off.copy(),
                 off.copy(), behaviour="parked", parked=True)


def simulate_ego(road: Road, times: np.ndarray, s0: float, v0: float, tracks: list[Track]):
    """The ego car keeps the inner forward lane and follows the vehicle ahead (IDM)."""
    n = len(times)
    lane = FORWARD_LANES[0]
    s = np.zeros(n)
    v = np.zeros(n)
    s[0], v[0] = s0, v0
    xs = np.stack([t.x for t in tracks]) if tracks else np.zeros((0, n))
    ys = np.stack([t.y for t in tracks]) if tracks else np.zeros((0, n))
    speeds = np.stack([t.speed for t in tracks]) if tracks else np.zeros((0, n))
    for i in range(1, n):
        ex, ey, eh = road.pose(s[i - 1], lane)
        dx, dy = xs[:, i - 1] - ex, ys[:, i - 1] - ey
        ahead = dx * np.cos(eh) + dy * np.sin(eh)
        lateral = -dx * np.sin(eh) + dy * np.cos(eh)
        # Anything in the ego's corridor ahead — a leader, a cut-in, a crossing pedestrian.
        blocking = (ahead > 0) & (np.abs(lateral) < 2.2)
        gap, dv = 1e9, 0.0
        if blocking.any():
            j = int(np.argmin(np.where(blocking, ahead, np.inf)))
            gap, dv = ahead[j] - 5.0, v[i - 1] - speeds[j, i - 1]
        s_star = 2.0 + v[i - 1] * 1.5 + v[i - 1] * dv / (2 * np.sqrt(1.5 * 2.0))
        acc = 1.5 * (1 - (v[i - 1] / v0) ** 4 - (max(s_star, 0) / max(gap, 0.1)) ** 2)
        v[i] = max(0.0, v[i - 1] + max(acc, -6.0) * DT)
        s[i] = s[i - 1] + v[i] * DT
    x, y, h = road.pose(s, np.full(n, lane))
    return x, y, h, v


def overlaps_ego(track: Track, ego_x, ego_y, ego_yaw, margin: float = 0.4) -> bool:
    """Does the agent's box ever come within `margin` of the ego's (4.6 × 1.9 m) box?"""
    w, l, _ = track.size
    dx, dy = track.x - ego_x, track.y - ego_y
    along = dx * np.cos(ego_yaw) + dy * np.sin(ego_yaw)
    across = -dx * np.sin(ego_yaw) + dy * np.cos(ego_yaw)
    reach = max(w, l) / 2
    return bool(((np.abs(along) < 2.3 + reach + margin) & (np.abs(across) < 0.95 + reach + margin)).any())
