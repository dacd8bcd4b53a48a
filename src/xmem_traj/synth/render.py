"""Camera rig with nuScenes geometry, and a small painter's-algorithm renderer of polygons.

Every surface (ground, road, markings, box faces, lamps, signal heads) is a flat 3-D polygon.
Per image all polygons are moved to the camera frame in one batch (padded to a common vertex
count by repeating their last vertex), clipped at the near plane, projected with K and filled
in order with PIL. An ID buffer records which agent (or signal head) owns each pixel, for the
occlusion-based visibility of the annotations and of the heads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from pyquaternion import Quaternion

NEAR = 0.3
CAMERAS = (
    "CAM_FRONT",
    "CAM_FRONT_RIGHT",
    "CAM_BACK_RIGHT",
    "CAM_BACK",
    "CAM_BACK_LEFT",
    "CAM_FRONT_LEFT",
)
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
    rotation: np.ndarray  # 3×3, camera axes (x right, y down, z forward) → ego
    K: np.ndarray  # 3×3 intrinsics at (width, height)
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
    return Camera(
        channel, np.array([tx, ty, tz]), np.stack([right, down, fwd], axis=1), K, width, height
    )


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
    """Collects world-frame polygons with colours and ids, then renders one camera image.
    Polygons come in batches of one vertex count (n, k, 3), drawn in the order added."""

    def __init__(self):
        self.batches: list[tuple[np.ndarray, list, list]] = []

    def add(self, poly: np.ndarray, colour, agent_id: int = 0) -> None:
        self.batches.append(
            (np.asarray(poly, float)[None], [tuple(int(c) for c in colour)], [agent_id])
        )

    def add_many(self, polys: np.ndarray, colour, agent_id: int = 0) -> None:
        """Polygons (n, k, 3) of one colour."""
        polys = np.asarray(polys, float)
        self.batches.append(
            (polys, [tuple(int(c) for c in colour)] * len(polys), [agent_id] * len(polys))
        )

    def add_coloured(self, polys: np.ndarray, colours: list, ids: list | None = None) -> None:
        """Polygons (n, k, 3) with their colours (n tuples) and ids (default 0)."""
        if len(polys):
            self.batches.append((polys, colours, ids if ids is not None else [0] * len(polys)))

    def _projected(self, cam: Camera, ego_xy_yaw):
        """Per batch: (camera-frame points, all in front, any in front, image points, off)."""
        ex, ey, eyaw = ego_xy_yaw
        m = rotz(eyaw) @ cam.rotation
        shift = np.array([ex, ey, 0.0]) + rotz(eyaw) @ cam.translation
        for pts, colours, ids in _merged(self.batches):
            camf = (pts - shift) @ m
            z = camf[..., 2]
            front_all = (z >= NEAR).all(axis=1)
            some = (z >= NEAR).any(axis=1)
            uv = camf @ cam.K.T
            uv = uv[..., :2] / np.where(front_all[:, None], z, 1.0)[..., None]
            off = (
                (uv[..., 0].max(1) < 0)
                | (uv[..., 0].min(1) > cam.width)
                | (uv[..., 1].max(1) < 0)
                | (uv[..., 1].min(1) > cam.height)
            )
            yield camf, front_all, some & ~(front_all & off), uv, colours, ids

    def render(
        self,
        cam: Camera,
        ego_xy_yaw: tuple[float, float, float],
        rng: np.random.Generator,
        sky=(150, 185, 220),
    ) -> tuple[np.ndarray, np.ndarray]:
        """→ RGB uint8 (H, W, 3) and id buffer int32 (H, W) (0 = no agent)."""
        img = Image.new("RGB", (cam.width, cam.height), sky)
        idbuf = Image.new("I", (cam.width, cam.height), 0)
        draw, draw_id = ImageDraw.Draw(img), ImageDraw.Draw(idbuf)
        agents_seen = False
        for camf, front_all, drawn, uv_all, colours, ids in self._projected(cam, ego_xy_yaw):
            for i in np.nonzero(drawn)[0]:
                if front_all[i]:
                    uv = uv_all[i]
                else:
                    poly = _clip_near(camf[i])
                    if len(poly) < 3:
                        continue
                    uv = cam.K @ poly.T
                    uv = (uv[:2] / uv[2:3]).T
                    if (
                        uv[:, 0].max() < 0
                        or uv[:, 0].min() > cam.width
                        or uv[:, 1].max() < 0
                        or uv[:, 1].min() > cam.height
                    ):
                        continue
                xy = [tuple(p) for p in np.clip(uv, -1e4, 1e4)]
                draw.polygon(xy, fill=colours[i])
                agents_seen |= ids[i] != 0
                if agents_seen:  # (the ground under everything leaves the id buffer at 0)
                    draw_id.polygon(xy, fill=ids[i])
        rgb = np.asarray(img, dtype=np.int16)
        rgb = rgb + rng.integers(-7, 8, size=rgb.shape, dtype=np.int8)  # sensor-like grain
        return np.clip(rgb, 0, 255).astype(np.uint8), np.asarray(idbuf, dtype=np.int32)


def _merged(batches):
    """Consecutive batches of one vertex count joined (fewer, larger projections)."""
    run: list = []
    for batch in batches:
        if run and batch[0].shape[1] != run[-1][0].shape[1]:
            yield (
                np.concatenate([b[0] for b in run]),
                [c for b in run for c in b[1]],
                [i for b in run for i in b[2]],
            )
            run = []
        run.append(batch)
    if run:
        yield (
            np.concatenate([b[0] for b in run]),
            [c for b in run for c in b[1]],
            [i for b in run for i in b[2]],
        )


_FACES = {
    "front": [0, 1, 2, 3],
    "back": [5, 4, 7, 6],
    "left": [4, 0, 3, 7],
    "right": [1, 5, 6, 2],
    "top": [4, 5, 1, 0],
}
_FACE_IDX = np.array(list(_FACES.values()))
_SHADE = np.array([0.85, 0.8, 0.7, 0.65, 1.0])


def facing(corners: np.ndarray, cam_pos: np.ndarray) -> np.ndarray:
    """Per face of a box (_FACES order: front, back, left, right, top): does it face the camera."""
    centres = corners[_FACE_IDX].mean(axis=1)
    normals = centres - corners.mean(axis=0)
    return np.einsum("fd,fd->f", normals, cam_pos - centres) > 0


def add_box(
    canvas: Canvas, corners: np.ndarray, colour, agent_id: int, cam_pos: np.ndarray
) -> None:
    """Visible faces of a box (back-face culled against the camera position), shaded."""
    seen = np.nonzero(facing(corners, cam_pos))[0]
    if len(seen):
        shaded = [tuple(int(c) for c in np.array(colour) * _SHADE[f]) for f in seen]
        canvas.add_coloured(corners[_FACE_IDX[seen]], shaded, [agent_id] * len(seen))


def face_patch(corners: np.ndarray, face: str, u0, u1, v0, v1) -> np.ndarray:
    """A rectangle on a box face, slightly in front of it; v runs up the face (0 bottom .. 1
    top). u runs across: back and front faces left → right as seen from outside; the side
    faces ("left", "right") from the back of the box (0) to its front (1)."""
    bl, br, tl, out_from, out_to = {
        "back": (7, 6, 4, 0, 4),
        "front": (2, 3, 1, 4, 0),
        "left": (7, 3, 4, 1, 0),
        "right": (6, 2, 5, 0, 1),
    }[face]
    outward = corners[out_to] - corners[out_from]
    outward = outward / (np.linalg.norm(outward) + 1e-9) * 0.02
    bl, br, tl = corners[bl], corners[br], corners[tl]
    ux, vz = br - bl, tl - bl
    p = lambda u, v: bl + u * ux + v * vz + outward  # noqa: E731
    return np.array([p(u0, v0), p(u1, v0), p(u1, v1), p(u0, v1)])
