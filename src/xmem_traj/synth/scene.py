"""One synthetic scene: a stretch of the city's roads, the ego and the agents around it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .vehicles import simulate_vehicle
from .roads import FORWARD_LANES, ONCOMING_LANES, City, Road
from .world import DT, Track, overlaps_ego, simulate_ego, simulate_parked, simulate_pedestrian

SCENE_SECONDS = 19.5     # 40 key frames at 2 Hz, as nuScenes scenes
PRE_ROLL = 4.0           # simulated before the scene starts (past of the first samples)
MOVING_VEHICLES = (22, 30)  # per scene (nuScenes val has ~60 challenge targets per scene)

_PALETTE = [(200, 200, 205), (30, 30, 35), (150, 20, 25), (25, 60, 140), (90, 95, 100),
            (230, 230, 225), (20, 90, 50), (170, 140, 60), (70, 40, 30)]
_CLOTHES = [(40, 60, 120), (120, 30, 40), (50, 50, 50), (200, 180, 60), (30, 110, 70)]


@dataclass
class Scene:
    road: Road
    times: np.ndarray
    ego: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # x, y, yaw, speed
    ego_s: np.ndarray
    tracks: list[Track]

    @property
    def streets(self) -> list[np.ndarray]:
        """Centrelines (k, 2) of the road's side streets (its junctions)."""
        return self.road.streets()

    def ego_at(self, t: float) -> tuple[float, float, float]:
        i = float(np.clip((t - self.times[0]) / DT, 0, len(self.times) - 1.001))
        j, a = int(i), i - int(i)
        x, y, yaw, _ = self.ego
        yw = np.unwrap(yaw[j:j + 2])
        return (x[j] * (1 - a) + x[j + 1] * a, y[j] * (1 - a) + y[j + 1] * a,
                yw[0] * (1 - a) + yw[1] * a)

    def ego_s_at(self, t: float) -> float:
        return float(np.interp(t, self.times, self.ego_s))


def make_scene(rng: np.random.Generator, city: City) -> Scene:
    """A scene on a stretch of one of the city's avenues."""
    times = np.arange(-PRE_ROLL, SCENE_SECONDS + 1.0 + DT / 2, DT)
    v_ego = rng.uniform(4.0, 9.0)
    road = city.stretch(rng, length=PRE_ROLL * 15 + 400 + 2 * 150)
    s0 = 150.0 + rng.uniform(0, 20)
    span = (s0 - 40, s0 + v_ego * (SCENE_SECONDS + PRE_ROLL) + 100)
    tracks: list[Track] = []
    # Moving vehicles: some ahead of the ego in its own lane, the rest anywhere.
    n_moving = rng.integers(*MOVING_VEHICLES)
    for k in range(n_moving):
        cat = rng.choice(["vehicle.car", "vehicle.truck", "vehicle.bicycle"], p=[0.74, 0.14, 0.12])
        near_ego = k < 2 * n_moving // 3  # keep traffic around the ego so cameras see it
        lanes = FORWARD_LANES * 3 + ONCOMING_LANES if near_ego else FORWARD_LANES + ONCOMING_LANES
        lane = FORWARD_LANES[0] if k < 2 else rng.choice(lanes)
        if cat == "vehicle.bicycle":
            lane = FORWARD_LANES[1] if lane < 0 else ONCOMING_LANES[1]
        if k < 2:  # leaders in the ego lane, a few car lengths apart
            s_start = s0 + 12 + 22 * k + rng.uniform(0, 8)
        elif near_ego:  # other lanes around the ego; only leaders share its lane
            if lane == FORWARD_LANES[0]:
                lane = FORWARD_LANES[1]
            s_start = s0 + rng.uniform(-40, 90)
        else:
            s_start = rng.uniform(*span)
        v0 = {"vehicle.car": rng.uniform(7, 13), "vehicle.truck": rng.uniform(6, 10),
              "vehicle.bicycle": rng.uniform(3, 6)}[cat]
        if k < 2:
            v0 = v_ego + rng.uniform(-0.5, 1.5)
        tr = simulate_vehicle(rng, road, times, cat, s_start, lane, v0)
        tr.colour = _PALETTE[rng.integers(len(_PALETTE))]
        tracks.append(tr)
    for _ in range(rng.integers(3, 7)):
        s_park, side = rng.uniform(*span), rng.choice([-1.0, 1.0])
        tr = simulate_parked(rng, road, times, s_park, side)
        tr.colour = _PALETTE[rng.integers(len(_PALETTE))]
        if not any(abs(j.s - s_park) < 9.0 and side in j.sides for j in road.junctions):
            tracks.append(tr)  # (none parks across a side street's mouth)
    for _ in range(rng.integers(4, 9)):
        tr = simulate_pedestrian(rng, road, times, rng.uniform(span[0] + 20, span[1] - 40),
                                 rng.choice([-1.0, 1.0]))
        tr.colour = _CLOTHES[rng.integers(len(_CLOTHES))]
        tracks.append(tr)
    ex, ey, eyaw, ev = simulate_ego(road, times, s0, v_ego, tracks)
    # No agent may drive through the ego (the camera would sit inside its box).
    tracks = [tr for tr in tracks if not overlaps_ego(tr, ex, ey, eyaw)]
    ego_s = s0 + np.concatenate([[0.0], np.cumsum(ev[:-1] * DT)])
    return Scene(road, times, (ex, ey, eyaw, ev), ego_s, tracks)


__all__ = ["MOVING_VEHICLES", "PRE_ROLL", "SCENE_SECONDS", "Scene", "make_scene"]
