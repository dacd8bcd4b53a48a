"""Camera rig with nuScenes geometry, and a small painter's-algorithm renderer of quads.

Every surface (ground, road, markings, box faces, lamps) is a 3-D quad. Per image all quads
are moved to the camera frame in one batch, clipped at the near plane, projected with K and
filled back to front with PIL. An ID buffer records which agent owns each pixel, for the
occlusion-based visibility of the annotations.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from pyquaternion import Quaternion

NEAR = 0.3
CAMERAS = ("CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_BACK_RIGHT", "CAM_BACK", "CAM_BACK_LEFT",
           "CAM_FRONT_LEFT")
# Mounting (x, y, z in the ego frame, yaw in degrees) and intrinsics at 1600×900, close to the
# values of the nuScenes calibration files.
_RIG = {
    "CAM_FRONT": ((1.70, 0.02, 1.51), 0.0, (1266.4, 816.3, 491.5)),
    "CAM_FRONT_RIGHT": ((1.55, -0.49, 1.50), -55.0, (1260.8, 807.9, 495.3)),
    "CAM_BACK_RIGHT": ((1.04, -0.48, 1.56), -110.0, (1256.7, 817.8, 451.9)),
    "CAM_BACK": ((0.03, 0.00, 1.57), 180.0, (809.2, 829.2, 481.8)),
    "CAM_BACK_LEFT": ((1.04, 0.48, 1.56), 110.0, (1256.7, 817.8, 451.9)),
    "CAM_FRONT_LEFT": ((1.52, 0.49, 1.51), 55.0, (1272.6, 826.6, 479.8)),
}


@dataclass(frozen=True)
class Camera:
    channel: str
    translation: np.ndarray  # camera origin in the ego frame
    rotation: np.ndarray     # 3×3, camera axes (x right, y down, z forward) → ego
    K: np.ndarray            # 3×3 intrinsics at (width, height)
    width: int
    height: int

    @property
    def quaternion(self) -> list[float]:
        return [float(v) for v in Quaternion(matrix=self.rotation, atol=1e-6).elements]


def make_camera(channel: str, width: int, height: int) -> Camera:
    (tx, ty, tz), yaw_deg, (f, cx, cy) = _RIG[channel]
    yaw = np.deg2rad(yaw_deg)
    fwd = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    down = np.array([0.0, 0.0, -1.0])
    sx, sy = width / 1600.0, height / 900.0
    K = np.array([[f * sx, 0, cx * sx], [0, f * sy, cy * sy], [0, 0, 1.0]])
    return Camera(channel, np.array([tx, ty, tz]), np.stack([right, down, fwd], axis=1), K,
                  width, height)


def rotz(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def box_corners(x, y, z, yaw, w, l, h) -> np.ndarray:
    """8 corners (8, 3); 0-3 front face (+length), in the devkit's Box.corners() order."""
    xs = l / 2 * np.array([1, 1, 1, 1, -1, -1, -1, -1])
    ys = w / 2 * np.array([1, -1, -1, 1, 1, -1, -1, 1])
    zs = h / 2 * np.array([1, 1, -1, -1, 1, 1, -1, -1])
    return (rotz(yaw) @ np.stack([xs, ys, zs]))[:, :].T + np.array([x, y, z])


def _clip_near(poly: np.ndarray) -> np.ndarray:
    """Sutherland–Hodgman clip of a camera-frame polygon (k, 3) to z >= NEAR."""
    out = []
    k = len(poly)
    for i in range(k):
        a, b = poly[i], poly[(i + 1) % k]
        ina, inb = a[2] >= NEAR, b[2] >= NEAR
        if ina:
            out.append(a)
        if ina != inb:
            t = (NEAR - a[2]) / (b[2] - a[2])
            out.append(a + t * (b - a))
    return np.array(out)


class Canvas:
    """Collects world-frame quads with colours and agent ids, then renders one camera image."""

    def __init__(self):
        self.quads: list[np.ndarray] = []
        self.colours: list[tuple[int, int, int]] = []
        self.ids: list[int] = []

    def add(self, quad: np.ndarray, colour, agent_id: int = 0) -> None:
        self.quads.append(np.asarray(quad, float))
        self.colours.append(tuple(int(c) for c in colour))
        self.ids.append(agent_id)

    def add_many(self, quads: np.ndarray, colour, agent_id: int = 0) -> None:
        """Quads (n, 4, 3) of one colour."""
        colour = tuple(int(c) for c in colour)
        self.quads.extend(np.asarray(quads, float))
        self.colours.extend([colour] * len(quads))
        self.ids.extend([agent_id] * len(quads))

    def render(self, cam: Camera, ego_xy_yaw: tuple[float, float, float], rng: np.random.Generator,
               sky=(150, 185, 220)) -> tuple[np.ndarray, np.ndarray]:
        """→ RGB uint8 (H, W, 3) and agent-id buffer int32 (H, W) (0 = no agent)."""
        img = Image.new("RGB", (cam.width, cam.height), sky)
        idbuf = Image.new("I", (cam.width, cam.height), 0)
        draw, draw_id = ImageDraw.Draw(img), ImageDraw.Draw(idbuf)
        if self.quads:
            ex, ey, eyaw = ego_xy_yaw
            pts = np.stack(self.quads)  # (P, 4, 3)
            ego = (pts - np.array([ex, ey, 0.0])) @ rotz(eyaw)
            camf = (ego - cam.translation) @ cam.rotation
            z = camf[..., 2]
            front_all = (z >= NEAR).all(axis=1)
            some = (z >= NEAR).any(axis=1)
            # Quads wholly in front: projected together, those outside the image culled.
            uv_all = camf @ cam.K.T
            uv_all = uv_all[..., :2] / np.where(front_all[:, None], z, 1.0)[..., None]
            off = ((uv_all[..., 0].max(1) < 0) | (uv_all[..., 0].min(1) > cam.width)
                   | (uv_all[..., 1].max(1) < 0) | (uv_all[..., 1].min(1) > cam.height))
            agents_seen = False
            for i in np.nonzero(some & ~(front_all & off))[0]:
                if front_all[i]:
                    uv = uv_all[i]
                else:
                    poly = _clip_near(camf[i])
                    if len(poly) < 3:
                        continue
                    uv = (cam.K @ poly.T)
                    uv = (uv[:2] / uv[2:3]).T
                    if (uv[:, 0].max() < 0 or uv[:, 0].min() > cam.width or uv[:, 1].max() < 0
                            or uv[:, 1].min() > cam.height):
                        continue
                xy = [tuple(p) for p in np.clip(uv, -1e4, 1e4)]
                draw.polygon(xy, fill=self.colours[i])
                agents_seen |= self.ids[i] != 0
                if agents_seen:  # (the ground under everything leaves the id buffer at 0)
                    draw_id.polygon(xy, fill=self.ids[i])
        rgb = np.asarray(img, dtype=np.int16)
        rgb = rgb + rng.integers(-7, 8, size=rgb.shape, dtype=np.int16)  # sensor-like grain
        return np.clip(rgb, 0, 255).astype(np.uint8), np.asarray(idbuf, dtype=np.int32)


def add_box(canvas: Canvas, corners: np.ndarray, colour, agent_id: int, cam_pos: np.ndarray) -> None:
    """Visible faces of a box (back-face culled against the camera position), shaded."""
    faces = {"front": [0, 1, 2, 3], "back": [5, 4, 7, 6], "left": [4, 0, 3, 7],
             "right": [1, 5, 6, 2], "top": [4, 5, 1, 0]}
    shade = {"front": 0.85, "back": 0.8, "left": 0.7, "right": 0.65, "top": 1.0}
    centre = corners.mean(axis=0)
    for name, idx in faces.items():
        quad = corners[idx]
        fc = quad.mean(axis=0)
        normal = fc - centre
        if np.dot(normal, cam_pos - fc) > 0:
            canvas.add(quad, np.array(colour) * shade[name], agent_id)


def face_patch(corners: np.ndarray, face: str, u0, u1, v0, v1) -> np.ndarray:
    """A rectangle on a box face, slightly in front of it; v runs up the face (0 bottom .. 1
    top). u runs across: back and front faces left → right as seen from outside; the side
    faces ("left", "right") from the back of the box (0) to its front (1)."""
    bl, br, tl, out_from, out_to = {
        "back": (7, 6, 4, 0, 4), "front": (2, 3, 1, 4, 0),
        "left": (7, 3, 4, 1, 0), "right": (6, 2, 5, 0, 1)}[face]
    outward = corners[out_to] - corners[out_from]
    outward = outward / (np.linalg.norm(outward) + 1e-9) * 0.02
    bl, br, tl = corners[bl], corners[br], corners[tl]
    ux, vz = br - bl, tl - bl
    p = lambda u, v: bl + u * ux + v * vz + outward  # noqa: E731
    return np.array([p(u0, v0), p(u1, v0), p(u1, v1), p(u0, v1)])
