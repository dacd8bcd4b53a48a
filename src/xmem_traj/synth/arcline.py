"""Lane centrelines in the devkit's own geometry: `arcline_path_3`, chains of Dubins-word paths
(start_pose, end_pose, shape, radius, segment_length), as nuscenes-devkit 1.2.0's
map_expansion/arcline_path_utils.py reads them.

A SUMO lane is a polyline, and SUMO moves its vehicles along exactly that polyline (a turn
through a junction is a few straight pieces of SUMO's sampled Bézier curve). Each polyline
segment becomes one path: shape "LSL" with segment_length [0, length, 0] (the devkit's middle
segment of an LSL word is straight; the arcs of zero length are no turn), so that the devkit's
discretisation retraces SUMO's path exactly. (An arc spline through the same vertices strays
up to ~0.5 m from SUMO's path on its coarse turn samples; exactness was preferred.)
"""

from __future__ import annotations

import math

import numpy as np

STRAIGHT_RADIUS = 1000.0  # the radius field of a straight path (the devkit ignores it there)


def _pose(x: float, y: float, yaw: float) -> list[float]:
    yaw = (yaw + math.pi) % (2 * math.pi) - math.pi
    return [round(float(x), 4), round(float(y), 4), round(float(yaw), 6)]


def arcline_paths(shape: np.ndarray) -> list[dict]:
    """The arcline_path_3 entry of a polyline (n, 2), n >= 2: one straight path per segment."""
    pts = np.asarray(shape, float)
    keep = np.concatenate([[True], np.hypot(*np.diff(pts, axis=0).T) > 1e-3])
    pts = pts[keep]
    if len(pts) < 2:
        raise ValueError("a lane needs two distinct points")
    paths = []
    for a, b in zip(pts[:-1], pts[1:]):
        yaw = math.atan2(b[1] - a[1], b[0] - a[0])
        paths.append(
            {
                "start_pose": _pose(a[0], a[1], yaw),
                "end_pose": _pose(b[0], b[1], yaw),
                "shape": "LSL",
                "radius": STRAIGHT_RADIUS,
                "segment_length": [0.0, round(float(np.hypot(*(b - a))), 6), 0.0],
            }
        )
    return paths


__all__ = ["arcline_paths"]
