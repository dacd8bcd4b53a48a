"""Fast box projection for the writer: the same region as projection.projected_hull (the
devkit's recipe: corners in front, view_points, convex hull clipped to the image), with the
global → camera transform of a frame computed once as matrices instead of per box."""

from __future__ import annotations

import numpy as np
from pyquaternion import Quaternion
from shapely.geometry import MultiPoint, Polygon
from shapely.geometry import box as shapely_box

from .render import box_corners


def world_to_camera(pose: dict, cs: dict) -> tuple[np.ndarray, np.ndarray]:
    """(R, t) with p_cam = R @ (p_world - t) for a frame's ego_pose and calibrated_sensor."""
    r_ego = Quaternion(pose["rotation"]).rotation_matrix
    r_cs = Quaternion(cs["rotation"]).rotation_matrix
    t = np.array(pose["translation"]) + r_ego @ np.array(cs["translation"])
    return (r_ego @ r_cs).T, t


def hull_area(
    state: dict, size, frame: tuple[np.ndarray, np.ndarray], K: np.ndarray, width: int, height: int
) -> float:
    """Image area (px²) of an agent's box (state x, y, yaw; size w, l, h) in the frame."""
    w, l, h = size
    corners = box_corners(state["x"], state["y"], h / 2, state["yaw"], w, l, h)
    R, t = frame
    cam = (corners - t) @ R.T
    cam = cam[cam[:, 2] > 0]
    if len(cam) < 3:
        return 0.0
    uv = cam @ K.T
    uv = uv[:, :2] / uv[:, 2:3]
    if (
        uv[:, 0].max() < 0
        or uv[:, 0].min() > width
        or uv[:, 1].max() < 0
        or uv[:, 1].min() > height
    ):
        return 0.0
    inter = MultiPoint([tuple(p) for p in uv]).convex_hull.intersection(
        shapely_box(0, 0, width, height)
    )
    return float(inter.area) if isinstance(inter, Polygon) else 0.0


__all__ = ["hull_area", "world_to_camera"]
