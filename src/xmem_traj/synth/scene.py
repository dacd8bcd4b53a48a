"""One synthetic scene: SUMO's traffic around an ego driving through the city, with every
vehicle's manoeuvres, their causes and the cues its lamps show.

A scene whose recording holds two boxes that meet within reach of the cameras is simulated
again with the next draw of its demand: SUMO keeps its vehicles apart in its own geometry
(bent along the lanes), while a box is rigid, and at a few tight junction passes two rigid
boxes touch. Such scenes are dropped, never patched (the rate is logged).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .demand import scene_demand
from .heads import Head, signal_heads
from .manoeuvres import detect
from .network import City
from .traffic import EGO_LEAD_S, STEP_S, WARMUP_S, simulate
from .vehicles import apply_cues
from .world import Track, box_corners_xy, ego_pose, overlapping, tracks_from

log = logging.getLogger(__name__)

SCENE_SECONDS = 19.5  # 40 key frames at 2 Hz, as nuScenes scenes
PRE_ROLL = 4.0  # recorded before the scene starts (cue lead times, the first pasts)
POST_ROLL = 1.5  # recorded after its last key frame (the last camera frames)
CHECK_RADIUS_M = 80.0  # boxes checked for contact this close to the ego
MAX_ATTEMPTS = 12

_PALETTE = [
    (200, 200, 205),
    (30, 30, 35),
    (150, 20, 25),
    (25, 60, 140),
    (90, 95, 100),
    (230, 230, 225),
    (20, 90, 50),
    (170, 140, 60),
    (70, 40, 30),
]
_CLOTHES = [(40, 60, 120), (120, 30, 40), (50, 50, 50), (200, 180, 60), (30, 110, 70)]


@dataclass
class Scene:
    """Scene times are seconds from its first key frame; the recording's steps start at
    t_rec0 (= -PRE_ROLL) every STEP_S."""

    ego: Track
    tracks: list[Track]
    heads: list[Head]
    signals: dict[str, list[str]]
    t_rec0: float
    attempts: int = 1

    def ego_at(self, t: float) -> tuple[float, float, float]:
        """nuScenes' ego pose (rear axle x, y and yaw) at scene time t."""
        return ego_pose(self.ego, t)

    def signal_state(self, tls: str, t: float) -> str:
        states = self.signals.get(tls, [])
        if not states:
            return ""
        return states[int(np.clip(np.floor((t - self.t_rec0) / STEP_S + 1e-6), 0, len(states) - 1))]

    def head_state(self, head: Head, t: float) -> str:
        return head.state(self.signal_state(head.tls, t))


def contacts(ego: Track, tracks: list[Track], t0: float, t1: float) -> list[tuple[float, str, str]]:
    """Every (time, key, key) where two boxes near the ego (vehicles, or a vehicle and a
    pedestrian) overlap at a recorded step in [t0, t1]."""
    found = []
    movers = [ego] + tracks
    for t in np.arange(t0, t1 + 1e-6, STEP_S):
        ex, ey, _ = ego_pose(ego, t)
        near = [a for a in movers if a.alive(t)]
        states = [a.at(t) for a in near]
        keep = [
            k for k, s in enumerate(states) if np.hypot(s["x"] - ex, s["y"] - ey) < CHECK_RADIUS_M
        ]
        if len(keep) < 2:
            continue
        size = np.array([near[k].size for k in keep])
        corners = box_corners_xy(
            np.array([states[k]["x"] for k in keep]),
            np.array([states[k]["y"] for k in keep]),
            np.array([states[k]["yaw"] for k in keep]),
            size[:, 0],
            size[:, 1],
        )
        for i, j in overlapping(corners):
            a, b = near[keep[i]], near[keep[j]]
            if a.category.startswith("vehicle") or b.category.startswith("vehicle"):
                found.append((float(t), a.key, b.key))
    return found


def make_scene(city: City, seed: int, index: int, seconds: float = SCENE_SECONDS) -> Scene:
    """Scene `index` of the dataset `seed` in `city`: simulated, checked, its cues set."""
    rng = np.random.default_rng([seed, index])
    heads = signal_heads(city.net)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        demand = scene_demand(
            city, rng, WARMUP_S + PRE_ROLL + seconds + POST_ROLL, WARMUP_S - EGO_LEAD_S
        )
        sumo_seed = int(rng.integers(2**31 - 1))
        try:
            rec = simulate(city, demand, sumo_seed, PRE_ROLL + seconds + POST_ROLL)
        except RuntimeError as err:  # the ego could not be placed: draw again
            log.info("scene %d attempt %d: %s", index, attempt, err)
            continue
        ego, tracks = tracks_from(rec, city.net, WARMUP_S + PRE_ROLL)
        bad = contacts(ego, tracks, -PRE_ROLL, seconds + POST_ROLL)
        if bad:
            log.info(
                "scene %d attempt %d: boxes meet (%s at %.1f s); simulated again",
                index,
                attempt,
                "/".join(bad[0][1:]),
                bad[0][0],
            )
            continue
        break
    else:
        raise RuntimeError(f"scene {index}: no clean simulation in {MAX_ATTEMPTS} attempts")
    for track in tracks:
        if track.category.startswith("vehicle"):
            track.colour = _PALETTE[int(rng.integers(len(_PALETTE)))]
            apply_cues(rng, track, detect(track, city.net))
        else:
            track.colour = _CLOTHES[int(rng.integers(len(_CLOTHES)))]
    ego.colour = (200, 200, 205)
    return Scene(ego, tracks, heads, rec.signals, -PRE_ROLL, attempt)


__all__ = ["POST_ROLL", "PRE_ROLL", "SCENE_SECONDS", "Scene", "contacts", "make_scene"]
