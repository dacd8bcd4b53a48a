"""Drawing the world for one camera at one instant: ground, side streets, agents and the lamps
that carry their cues, placed as on real vehicles.

Cars and trucks: two rear lamps at the rear corners and a centre high-mounted stop lamp
(brake lights), amber indicators at the front and rear corners and repeaters on the sides
(all of a side flash together). Bicycles: a steady red rear light (no brake light) and the
rider's arm stretched out for a hand signal. Pedestrians: the face shows when turned to the
camera.
"""
from __future__ import annotations

import numpy as np

from .render import Canvas, Camera, add_box, box_corners, face_patch, rotz
from .roads import KERB, ROAD_HALF
from .world import Track

BRAKE_LIT, BRAKE_OFF = (255, 35, 25), (100, 22, 22)
AMBER_LIT, AMBER_OFF = (255, 170, 0), (95, 75, 40)
BIKE_REAR_LIGHT = (200, 30, 30)

#: Where the lamps sit on a face: (u0, u1, v0, v1), u across the face seen from outside
#: (back: vehicle's left → right; front: vehicle's right → left), v up from the bottom.
REAR_LAMPS = ((0.03, 0.22, 0.55, 0.75), (0.78, 0.97, 0.55, 0.75))
CHMSL = (0.40, 0.60, 0.90, 0.97)
REAR_INDICATOR = {"left": (0.03, 0.22, 0.38, 0.52), "right": (0.78, 0.97, 0.38, 0.52)}
FRONT_INDICATOR = {"left": (0.80, 0.98, 0.35, 0.55), "right": (0.02, 0.20, 0.35, 0.55)}
SIDE_REPEATER = (0.74, 0.84, 0.55, 0.66)


def visible_faces(corners: np.ndarray, cam_pos: np.ndarray) -> dict[str, bool]:
    """Which faces of a box (Box.corners() order) face the camera."""
    centre = corners.mean(0)
    faces = {"front": [0, 1, 2, 3], "back": [4, 5, 6, 7], "left": [0, 3, 4, 7], "right": [1, 2, 5, 6]}
    return {name: bool(np.dot(corners[idx].mean(0) - centre, cam_pos - corners[idx].mean(0)) > 0)
            for name, idx in faces.items()}


def _patch(canvas, corners, face, box, colour, aid):
    canvas.add(face_patch(corners, face, *box), colour, aid)


def _vehicle_lamps(canvas: Canvas, corners, state: dict, aid: int, faces: dict, category: str) -> None:
    if category == "vehicle.bicycle":
        if faces["back"]:
            _patch(canvas, corners, "back", (0.35, 0.65, 0.45, 0.55), BIKE_REAR_LIGHT, aid)
        return
    brake = BRAKE_LIT if state["brake"] else BRAKE_OFF
    amber = {s: AMBER_LIT if state[s] else AMBER_OFF for s in ("left", "right")}
    if faces["back"]:
        _patch(canvas, corners, "back", (0.15, 0.85, 0.76, 0.88), (40, 50, 60), aid)  # rear window
        for box in REAR_LAMPS:
            _patch(canvas, corners, "back", box, brake, aid)
        _patch(canvas, corners, "back", CHMSL, brake, aid)
        for side, box in REAR_INDICATOR.items():
            _patch(canvas, corners, "back", box, amber[side], aid)
    if faces["front"]:
        _patch(canvas, corners, "front", (0.12, 0.88, 0.68, 0.95), (40, 50, 60), aid)  # windscreen
        _patch(canvas, corners, "front", (0.25, 0.45, 0.42, 0.56), (240, 240, 200), aid)
        _patch(canvas, corners, "front", (0.55, 0.75, 0.42, 0.56), (240, 240, 200), aid)
        for side, box in FRONT_INDICATOR.items():
            _patch(canvas, corners, "front", box, amber[side], aid)
    for side in ("left", "right"):
        if faces[side]:
            _patch(canvas, corners, side, SIDE_REPEATER, amber[side], aid)


def _cyclist_arm(canvas: Canvas, st: dict, tr: Track, aid: int, cam_pos) -> None:
    """A hand signal: the rider's arm held out to the side at shoulder height."""
    side = "left" if st["left_active"] else "right" if st["right_active"] else ""
    if not side:
        return
    w, _, h = tr.size
    sign = 1.0 if side == "left" else -1.0
    off = rotz(st["yaw"]) @ np.array([0.0, sign * (w / 2 + 0.3), 0.0])
    arm = box_corners(st["x"] + off[0], st["y"] + off[1], h - 0.35, st["yaw"], 0.6, 0.12, 0.1)
    add_box(canvas, arm, (210, 170, 140), aid, cam_pos)


def _ground(canvas: Canvas, scene, t: float) -> None:
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
        canvas.add_many(np.stack([xq, yq, np.zeros_like(xq)], -1), colour)

    for side in (-1, 1):
        strip(side * KERB, side * (KERB + 3.0), (170, 168, 160))   # sidewalk
    strip(-KERB, KERB, (72, 72, 76))                                # asphalt
    for street in scene.streets:                                    # side streets
        if np.hypot(*(street[0] - [ex, ey])) < 160:
            _street(canvas, street)
    for side in (-1, 1):
        strip(side * (ROAD_HALF - 0.08), side * (ROAD_HALF + 0.08), (235, 235, 235))
        strip(side * (3.5 - 0.07), side * (3.5 + 0.07), (235, 235, 235), dash=2.0)
    strip(-0.18, -0.04, (230, 190, 40))
    strip(0.04, 0.18, (230, 190, 40))


def _street(canvas: Canvas, path: np.ndarray, half_width: float = 3.6) -> None:
    a, b = path[:-1], path[1:]
    direction = (b - a) / (np.linalg.norm(b - a, axis=1, keepdims=True) + 1e-9)
    normal = np.stack([-direction[:, 1], direction[:, 0]], 1) * half_width
    quads = np.stack([a - normal, b - normal, b + normal, a + normal], 1)
    canvas.add_many(np.concatenate([quads, np.zeros((*quads.shape[:2], 1))], -1), (72, 72, 76))


def draw_world(scene, cam: Camera, t: float, rng: np.random.Generator):
    """Render camera `cam` at time t → (RGB (H, W, 3), agent-id buffer (H, W), per agent index
    the faces it shows the camera); ids are 1 + index into scene.tracks."""
    canvas = Canvas()
    _ground(canvas, scene, t)
    ex, ey, eyaw = scene.ego_at(t)
    cam_pos = rotz(eyaw) @ cam.translation + [ex, ey, 0]
    states = []
    for i, tr in enumerate(scene.tracks):
        st = tr.at(t)
        dist = np.hypot(st["x"] - cam_pos[0], st["y"] - cam_pos[1])
        if dist < 90:
            states.append((dist, i, tr, st))
    shown = {}
    for dist, i, tr, st in sorted(states, key=lambda s: -s[0]):
        w, l, h = tr.size
        corners = box_corners(st["x"], st["y"], h / 2, st["yaw"], w, l, h)
        faces = visible_faces(corners, cam_pos)
        shown[i] = faces
        add_box(canvas, corners, tr.colour, i + 1, cam_pos)
        if tr.category == "human.pedestrian.adult":
            head = box_corners(st["x"], st["y"], h - 0.12, st["yaw"], w * 0.7, l * 0.7, 0.24)
            add_box(canvas, head, (60, 40, 30), i + 1, cam_pos)           # hair all round
            if visible_faces(head, cam_pos)["front"]:                      # face toward camera
                canvas.add(face_patch(head, "front", 0.1, 0.9, 0.05, 0.85), (225, 180, 150), i + 1)
        else:
            _vehicle_lamps(canvas, corners, st, i + 1, faces, tr.category)
            if tr.category == "vehicle.bicycle":
                _cyclist_arm(canvas, st, tr, i + 1, cam_pos)
    rgb, ids = canvas.render(cam, (ex, ey, eyaw), rng)
    return rgb, ids, shown


def visibility_fraction(idbuf: np.ndarray, agent_id: int, hull_area: float) -> float:
    if hull_area <= 0:
        return 0.0
    return float(min(1.0, (idbuf == agent_id).sum() / hull_area))


__all__ = ["draw_world", "visibility_fraction", "visible_faces"]
