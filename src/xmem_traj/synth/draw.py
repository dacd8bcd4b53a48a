"""Drawing the world for one camera at one instant: the city's ground, the signal heads (each
showing its approach's state), agents and the lamps that carry their cues, placed as on real
vehicles; 3-D objects back to front.

Cars and trucks: two rear lamps at the rear corners and a centre high-mounted stop lamp
(brake lights), amber indicators at the front and rear corners and repeaters on the sides
(all of a side flash together). Bicycles: a steady red rear light (no brake light) and the
rider's arm stretched out for a hand signal. Pedestrians: the face shows when turned to the
camera.
"""

from __future__ import annotations

import numpy as np

from .ground import GRASS, Ground
from .heads import HEAD_HEIGHT, HEAD_SIZE, POLE_HEIGHT, Head
from .render import Camera, Canvas, add_box, box_corners, face_patch, facing, rotz
from .world import Track

BRAKE_LIT, BRAKE_OFF = (255, 35, 25), (100, 22, 22)
AMBER_LIT, AMBER_OFF = (255, 170, 0), (95, 75, 40)
BIKE_REAR_LIGHT = (200, 30, 30)
HOUSING, POLE = (25, 25, 28), (90, 92, 95)
LAMP_LIT = {"red": (255, 40, 30), "yellow": (255, 190, 0), "green": (40, 230, 110)}
LAMP_OFF = {"red": (70, 20, 20), "yellow": (70, 55, 15), "green": (20, 60, 35)}
HEAD_ID_BASE = 1_000_000  # id-buffer ids of signal heads: this + head index
AGENT_REACH_M, HEAD_REACH_M, GROUND_REACH_M = 90.0, 90.0, 130.0

#: Where the lamps sit on a face: (u0, u1, v0, v1), u across the face seen from outside
#: (back: vehicle's left → right; front: vehicle's right → left), v up from the bottom.
REAR_LAMPS = ((0.03, 0.22, 0.55, 0.75), (0.78, 0.97, 0.55, 0.75))
CHMSL = (0.40, 0.60, 0.90, 0.97)
REAR_INDICATOR = {"left": (0.03, 0.22, 0.38, 0.52), "right": (0.78, 0.97, 0.38, 0.52)}
FRONT_INDICATOR = {"left": (0.80, 0.98, 0.35, 0.55), "right": (0.02, 0.20, 0.35, 0.55)}
SIDE_REPEATER = (0.74, 0.84, 0.55, 0.66)


def visible_faces(corners: np.ndarray, cam_pos: np.ndarray) -> dict[str, bool]:
    """Which faces of a box (Box.corners() order) face the camera."""
    front, back, left, right, _ = facing(corners, cam_pos)
    return {"front": bool(front), "back": bool(back), "left": bool(left), "right": bool(right)}


def _patch(canvas, corners, face, box, colour, aid):
    canvas.add(face_patch(corners, face, *box), colour, aid)


def _vehicle_lamps(
    canvas: Canvas, corners, state: dict, aid: int, faces: dict, category: str
) -> None:
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


def _ground(canvas: Canvas, ground: Ground, cam_pos: np.ndarray, eyaw: float) -> None:
    """Grass under the camera, then the city's ground polygons near it, in order."""
    big = 400.0
    corners = np.array([[-big, -big, 0], [big, -big, 0], [big, big, 0], [-big, big, 0]])
    canvas.add(corners + [cam_pos[0], cam_pos[1], 0], GRASS)
    for polys, colours, centres, radii in ground.batches:
        d = np.hypot(centres[:, 0] - cam_pos[0], centres[:, 1] - cam_pos[1]) - radii
        keep = np.nonzero(d < GROUND_REACH_M)[0]
        canvas.add_coloured(polys[keep], [colours[k] for k in keep])


def _head(canvas: Canvas, head: Head, colour: str, cam_pos: np.ndarray) -> bool:
    """A signal head: its housing and three lamps facing its approach → whether the camera
    sees its face (the side with the lamps)."""
    w, d, h = HEAD_SIZE
    corners = box_corners(head.x, head.y, head.z, head.yaw, w, d, h)
    hid = HEAD_ID_BASE + head.index
    add_box(canvas, corners, HOUSING, hid, cam_pos)
    facing = visible_faces(corners, cam_pos)["front"]
    if facing:
        for k, name in enumerate(("red", "yellow", "green")):
            v0 = 0.70 - 0.31 * k
            lamp = LAMP_LIT[name] if colour == name else LAMP_OFF[name]
            canvas.add(face_patch(corners, "front", 0.2, 0.8, v0, v0 + 0.24), lamp, hid)
    return facing


def _mast(canvas: Canvas, heads: list[Head], cam_pos: np.ndarray) -> None:
    """The pole at the far kerb and the arm out over the lanes that carry an approach's heads."""
    right = min(heads, key=lambda hd: hd.lane)  # lane _0.. the rightmost lane first
    left = max(heads, key=lambda hd: hd.lane)
    yaw = right.yaw  # heads face the traffic: -x is along it
    out = np.array([np.sin(yaw), -np.cos(yaw)])  # to the approach's right, seen from it
    out = -out
    px, py = right.x + out[0] * 3.0, right.y + out[1] * 3.0
    add_box(
        canvas, box_corners(px, py, POLE_HEIGHT / 2, yaw, 0.2, 0.2, POLE_HEIGHT), POLE, 0, cam_pos
    )
    tx, ty = left.x - out[0] * 0.3, left.y - out[1] * 0.3
    length = float(np.hypot(tx - px, ty - py))
    if length > 0.5:
        arm_yaw = float(np.arctan2(ty - py, tx - px))
        add_box(
            canvas,
            box_corners(
                (px + tx) / 2, (py + ty) / 2, HEAD_HEIGHT + 0.6, arm_yaw, 0.12, length, 0.12
            ),
            POLE,
            0,
            cam_pos,
        )


def draw_world(
    scene, ground: Ground, cam: Camera, t: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, dict, dict]:
    """Render camera `cam` at time t → (RGB (H, W, 3), id buffer (H, W), per agent index the
    faces it shows the camera, per signal head index whether its lamps face the camera);
    ids are 1 + index into scene.tracks, HEAD_ID_BASE + head index for heads."""
    canvas = Canvas()
    ex, ey, eyaw = scene.ego_at(t)
    cam_pos = rotz(eyaw) @ cam.translation + [ex, ey, 0]
    _ground(canvas, ground, cam_pos, eyaw)
    items = []
    for i, tr in enumerate(scene.tracks):
        if not tr.alive(t):
            continue
        st = tr.at(t)
        dist = np.hypot(st["x"] - cam_pos[0], st["y"] - cam_pos[1])
        if dist < AGENT_REACH_M:
            items.append((dist, "agent", (i, tr, st)))
    near_heads = [
        hd for hd in scene.heads if np.hypot(hd.x - cam_pos[0], hd.y - cam_pos[1]) < HEAD_REACH_M
    ]
    for hd in near_heads:
        items.append((float(np.hypot(hd.x - cam_pos[0], hd.y - cam_pos[1])), "head", hd))
    by_edge: dict[str, list[Head]] = {}
    for hd in near_heads:
        by_edge.setdefault(hd.edge, []).append(hd)
    for group in by_edge.values():
        items.append(
            (float(np.hypot(group[0].x - cam_pos[0], group[0].y - cam_pos[1])) + 0.5, "mast", group)
        )
    shown, heads_shown = {}, {}
    for _, kind, item in sorted(items, key=lambda it: -it[0]):
        if kind == "head":
            heads_shown[item.index] = _head(canvas, item, scene.head_state(item, t), cam_pos)
        elif kind == "mast":
            _mast(canvas, item, cam_pos)
        else:
            i, tr, st = item
            shown[i] = _agent(canvas, i, tr, st, cam_pos)
    rgb, ids = canvas.render(cam, (ex, ey, eyaw), rng)
    return rgb, ids, shown, heads_shown


def _agent(canvas: Canvas, i: int, tr: Track, st: dict, cam_pos: np.ndarray) -> dict[str, bool]:
    w, l, h = tr.size
    corners = box_corners(st["x"], st["y"], h / 2, st["yaw"], w, l, h)
    faces = visible_faces(corners, cam_pos)
    add_box(canvas, corners, tr.colour, i + 1, cam_pos)
    if tr.category.startswith("human.pedestrian"):
        head = box_corners(st["x"], st["y"], h - 0.12, st["yaw"], w * 0.7, l * 0.7, 0.24)
        add_box(canvas, head, (60, 40, 30), i + 1, cam_pos)  # hair all round
        if visible_faces(head, cam_pos)["front"]:  # face toward camera
            canvas.add(face_patch(head, "front", 0.1, 0.9, 0.05, 0.85), (225, 180, 150), i + 1)
    else:
        _vehicle_lamps(canvas, corners, st, i + 1, faces, tr.category)
        if tr.category == "vehicle.bicycle":
            _cyclist_arm(canvas, st, tr, i + 1, cam_pos)
    return faces


def visibility_fraction(idbuf: np.ndarray, agent_id: int, hull_area: float) -> float:
    if hull_area <= 0:
        return 0.0
    return float(min(1.0, (idbuf == agent_id).sum() / hull_area))


__all__ = ["HEAD_ID_BASE", "draw_world", "visibility_fraction", "visible_faces"]
