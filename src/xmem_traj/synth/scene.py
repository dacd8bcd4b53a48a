"""One synthetic scene: road, ego, agents, and how to draw the world at any instant."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .render import Canvas, Camera, add_box, box_corners, face_patch, rotz
from .world import (DT, FORWARD_LANES, KERB, ONCOMING_LANES, ROAD_HALF, Road, Track,
                    overlaps_ego, simulate_ego, simulate_parked, simulate_pedestrian, simulate_vehicle)

SCENE_SECONDS = 19.5     # 40 key frames at 2 Hz, as nuScenes scenes
PRE_ROLL = 4.0           # simulated before the scene starts (past of the first samples)

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

    def ego_at(self, t: float) -> tuple[float, float, float]:
        i = float(np.clip((t - self.times[0]) / DT, 0, len(self.times) - 1.001))
        j, a = int(i), i - int(i)
        x, y, yaw, _ = self.ego
        yw = np.unwrap(yaw[j:j + 2])
        return (x[j] * (1 - a) + x[j + 1] * a, y[j] * (1 - a) + y[j + 1] * a,
                yw[0] * (1 - a) + yw[1] * a)

    def ego_s_at(self, t: float) -> float:
        return float(np.interp(t, self.times, self.ego_s))


def make_scene(rng: np.random.Generator) -> Scene:
    times = np.arange(-PRE_ROLL, SCENE_SECONDS + 1.0 + DT / 2, DT)
    v_ego = rng.uniform(6.0, 11.0)
    road = Road.random(rng, length=PRE_ROLL * 15 + 400 + 2 * 150)
    s0 = 150.0 + rng.uniform(0, 20)
    span = (s0 - 40, s0 + v_ego * (SCENE_SECONDS + PRE_ROLL) + 100)
    tracks: list[Track] = []
    # Moving vehicles: some ahead of the ego in its own lane, the rest anywhere.
    for k in range(rng.integers(9, 15)):
        cat = rng.choice(["vehicle.car", "vehicle.truck", "vehicle.bicycle"], p=[0.72, 0.14, 0.14])
        lane = FORWARD_LANES[0] if k < 2 else rng.choice(FORWARD_LANES + ONCOMING_LANES)
        near_ego = k < 6  # keep traffic around the ego so cameras see it
        if cat == "vehicle.bicycle":
            lane = FORWARD_LANES[1] if lane < 0 else ONCOMING_LANES[1]
        if k < 2:  # leaders in the ego lane, a few car lengths apart
            s_start = s0 + 12 + 22 * k + rng.uniform(0, 8)
        elif near_ego:  # other lanes around the ego; only leaders share its lane
            if lane == FORWARD_LANES[0]:
                lane = FORWARD_LANES[1]
            s_start = s0 + rng.uniform(-25, 60)
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
        tr = simulate_parked(rng, road, times, rng.uniform(*span), rng.choice([-1.0, 1.0]))
        tr.colour = _PALETTE[rng.integers(len(_PALETTE))]
        tracks.append(tr)
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


def _ground_quads(canvas: Canvas, scene: Scene, t: float) -> None:
    ex, ey, eyaw = scene.ego_at(t)
    big = 300.0
    corners = np.array([[-big, -big, 0], [big, -big, 0], [big, big, 0], [-big, big, 0]])
    canvas.add(corners @ rotz(eyaw).T + [ex, ey, 0], (95, 120, 70))
    s_ego = scene.ego_s_at(t)
    road = scene.road
    step = 4.0
    ss = np.arange(s_ego - 60, s_ego + 140, step)

    def strip(d0, d1, colour, dash=None):
        starts = ss[::2] if dash else ss
        ends = starts + (dash if dash else step)
        s4 = np.stack([starts, ends, ends, starts], 1)
        d4 = np.broadcast_to(np.array([d0, d0, d1, d1], float), s4.shape)
        xq, yq, _ = road.pose(s4, d4)
        for quad in np.stack([xq, yq, np.zeros_like(xq)], -1):
            canvas.add(quad, colour)

    for side in (-1, 1):
        strip(side * KERB, side * (KERB + 3.0), (170, 168, 160))   # sidewalk
    strip(-KERB, KERB, (72, 72, 76))                                # asphalt
    for side in (-1, 1):
        strip(side * (ROAD_HALF - 0.08), side * (ROAD_HALF + 0.08), (235, 235, 235))
        strip(side * (3.5 - 0.07), side * (3.5 + 0.07), (235, 235, 235), dash=2.0)
    strip(-0.18, -0.04, (230, 190, 40))
    strip(0.04, 0.18, (230, 190, 40))


def _vehicle_lamps(canvas, corners, state, t, aid, cam_pos, category):
    back_visible = np.dot(corners[4] - corners[0], cam_pos - corners[4:].mean(0)) > 0
    front_visible = not back_visible
    blink_on = (t % 0.7) < 0.45
    brake_col = (255, 30, 30) if state["brake"] else (90, 25, 25)
    ind = {s: ((255, 165, 0) if (state[s] and blink_on) else (85, 65, 30)) for s in ("left", "right")}
    if category == "vehicle.bicycle":
        if back_visible:
            canvas.add(face_patch(corners, "back", 0.3, 0.7, 0.45, 0.55), brake_col, aid)
        return
    if back_visible:  # a full-width brake light bar, big amber corner indicators, rear window
        canvas.add(face_patch(corners, "back", 0.0, 1.0, 0.5, 0.7), brake_col, aid)
        canvas.add(face_patch(corners, "back", 0.0, 0.3, 0.2, 0.5), ind["left"], aid)
        canvas.add(face_patch(corners, "back", 0.7, 1.0, 0.2, 0.5), ind["right"], aid)
        canvas.add(face_patch(corners, "back", 0.15, 0.85, 0.74, 0.95), (40, 50, 60), aid)
    if front_visible:
        canvas.add(face_patch(corners, "front", 0.3, 0.7, 0.45, 0.6), (240, 240, 200), aid)
        canvas.add(face_patch(corners, "front", 0.7, 1.0, 0.3, 0.6), ind["left"], aid)
        canvas.add(face_patch(corners, "front", 0.0, 0.3, 0.3, 0.6), ind["right"], aid)
        canvas.add(face_patch(corners, "front", 0.12, 0.88, 0.68, 0.95), (40, 50, 60), aid)


def draw_world(scene: Scene, cam: Camera, t: float, rng: np.random.Generator, visible_ids=None):
    """Render camera `cam` at time t → (RGB (H, W, 3), agent-id buffer (H, W)); ids are
    1 + index into scene.tracks."""
    canvas = Canvas()
    _ground_quads(canvas, scene, t)
    ex, ey, eyaw = scene.ego_at(t)
    cam_pos = rotz(eyaw) @ cam.translation + [ex, ey, 0]
    states = []
    for i, tr in enumerate(scene.tracks):
        st = tr.at(t)
        dist = np.hypot(st["x"] - cam_pos[0], st["y"] - cam_pos[1])
        if dist < 90:
            states.append((dist, i, tr, st))
    for dist, i, tr, st in sorted(states, key=lambda s: -s[0]):
        w, l, h = tr.size
        corners = box_corners(st["x"], st["y"], h / 2, st["yaw"], w, l, h)
        add_box(canvas, corners, tr.colour, i + 1, cam_pos)
        if tr.category == "human.pedestrian.adult":
            head = box_corners(st["x"], st["y"], h - 0.12, st["yaw"], w * 0.7, l * 0.7, 0.24)
            add_box(canvas, head, (60, 40, 30), i + 1, cam_pos)           # hair all round
            if np.dot(head[0] - head[4], cam_pos - head.mean(0)) > 0:     # face toward camera
                canvas.add(face_patch(head, "front", 0.1, 0.9, 0.05, 0.85), (225, 180, 150), i + 1)
        else:
            _vehicle_lamps(canvas, corners, st, t, i + 1, cam_pos, tr.category)
    return canvas.render(cam, (ex, ey, eyaw), rng)


def visibility_fraction(idbuf: np.ndarray, agent_id: int, hull_area: float) -> float:
    if hull_area <= 0:
        return 0.0
    return float(min(1.0, (idbuf == agent_id).sum() / hull_area))


__all__ = ["Scene", "make_scene", "draw_world", "visibility_fraction", "SCENE_SECONDS"]
