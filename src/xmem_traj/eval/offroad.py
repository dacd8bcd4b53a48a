"""OffRoadRate with the semantics of nuscenes.eval.prediction.metrics.OffRoadRate: the share of
a prediction's modes that leave the drivable area (or the map's canvas) anywhere along a cubic
spline through the mode (200 points; modes with at most 3 distinct points are used as they
are), on the map expansion's drivable-area mask at 10 px/m.

The masks are the devkit's (data/maps.py: NuScenesMap exactly as the devkit's metric builds
them, but only for the locations the targets drive in).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
from scipy import interpolate

from ..data.maps import PIXELS_PER_METER

log = logging.getLogger(__name__)

POINTS = 200


def _path(mode: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The devkit's interpolation: distinct points in order; a smoothing cubic spline through
    them when there are more than 3."""
    points = np.array(list(dict.fromkeys(map(tuple, mode))))
    points = np.atleast_2d(points)
    if points.shape[0] <= 3:
        return points[:, 0], points[:, 1]
    # scipy warns when the smoothing target s = 0.1 cannot be met exactly; the devkit's metric
    # gets the same warning and keeps the spline, as we do (silenced: noise in every report).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        knots, _ = interpolate.splprep([points[:, 0], points[:, 1]], k=3, s=0.1)
    return interpolate.splev(np.linspace(0, 1, POINTS), knots)


def off_road_rate(pred: np.ndarray, locations, masks: dict[str, np.ndarray]) -> np.ndarray:
    """pred (N, K, T, 2) global xy, a location per target → (N,) share of modes off-road."""
    out = np.zeros(len(pred))
    for i, (modes, loc) in enumerate(zip(np.asarray(pred, float), locations)):
        mask = masks[loc]
        rows_max, cols_max = mask.shape
        bad = 0
        for mode in modes:
            x, y = _path(mode)
            rows = (np.asarray(y) * PIXELS_PER_METER).astype("int")
            cols = (np.asarray(x) * PIXELS_PER_METER).astype("int")
            outside = (
                (rows >= rows_max).any()
                or (rows < 0).any()
                or (cols >= cols_max).any()
                or (cols < 0).any()
            )
            if outside or not np.all(mask[rows, cols]):
                bad += 1
        out[i] = bad / len(modes)
    return out


__all__ = ["off_road_rate"]
