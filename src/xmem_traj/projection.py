"""3-D box → 2-D image region, the devkit's way (scripts/export_2d_annotations_as_json.py):
global → ego (this image's own ego pose) → camera; keep corners in front (z > 0); project with
view_points; intersect the convex hull with the image rectangle (the image's real size).
A box need not pass BoxVisibility.ANY to count: a bus filling the frame with every corner
outside it still intersects the image."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from nuscenes.utils.data_classes import Box
from nuscenes.utils.geometry_utils import view_points
from PIL import Image, ImageDraw
from pyquaternion import Quaternion
from shapely.geometry import MultiPoint, Polygon
from shapely.geometry import box as shapely_box


def box_to_camera(box: Box, ego_pose: dict, calibrated_sensor: dict) -> Box:
    """A global-frame Box moved into the camera frame of one sample_data (copy)."""
    box = box.copy()
    box.translate(-np.array(ego_pose["translation"]))
    box.rotate(Quaternion(ego_pose["rotation"]).inverse)
    box.translate(-np.array(calibrated_sensor["translation"]))
    box.rotate(Quaternion(calibrated_sensor["rotation"]).inverse)
    return box


def projected_hull(
    box_cam: Box, intrinsic: Sequence[Sequence[float]], width: int, height: int
) -> Polygon | None:
    """Convex hull of the in-front corners, clipped to [0, width] × [0, height]; None when it
    does not cover any area of the image."""
    corners = box_cam.corners()
    corners = corners[:, corners[2, :] > 0]
    if corners.shape[1] < 3:
        return None
    uv = view_points(corners, np.array(intrinsic), normalize=True)[:2].T
    hull = MultiPoint([tuple(p) for p in uv]).convex_hull
    canvas = shapely_box(0, 0, width, height)
    if not hull.intersects(canvas):
        return None
    inter = hull.intersection(canvas)
    if inter.is_empty or inter.area <= 0 or not isinstance(inter, Polygon):
        return None
    return inter


def rasterize(
    polygon: Polygon, width: int, height: int, out_width: int, out_height: int
) -> np.ndarray:
    """Fill a polygon given in (width × height) pixel coordinates into a bool (out_height,
    out_width) mask, scaling coordinates to the output size."""
    sx, sy = out_width / width, out_height / height
    img = Image.new("L", (out_width, out_height), 0)
    pts = [(x * sx, y * sy) for x, y in polygon.exterior.coords]
    ImageDraw.Draw(img).polygon(pts, fill=1)
    return np.asarray(img, dtype=bool)
