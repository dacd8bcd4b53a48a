"""Predicted modes kept on the road, a decoding step (`--road-snap R`): every point of a mode
that leaves the map's drivable area moves to the nearest point at least SNAP_MARGIN_M inside
it, where one lies within R metres; points farther off stay where they are.

Why: most off-road modes are near misses. On the choice world's train_val (world seed 1000),
the best mode of 5 % of the targets left the drivable area while the truth left it for 0.2 %,
and half the off-road modes were less than 2 m off (docs/experiments.md). Moving those points
onto the road moves them towards the truth: every metric improved a little, and OffRoadRate
fell from 0.064 to 0.017 in the prototype that chose R = 8 m among 2, 4, 8 and 16 m (first
seed, all targets), and from 0.067 to 0.020 with this code (3 seeds, targets with a past).
It runs after the ranking (traj/ranking.py), which chose the first mode on the modes as the
network wrote them.

Agents that are not on the drivable area themselves (a car park the map leaves out, a
driveway) keep their modes as predicted: there the map does not tell where they may go.
Like the ranking, it changes no trained weight: the run's config (or an eval override)
decides it, for every learned method alike. The devkit's physics baselines are left as the
devkit makes them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage

from ..data.maps import PIXELS_PER_METER, DrivableMaps

#: how far inside the drivable area a moved point lands (metres): the devkit's metric checks a
#: spline through the points, which bends a little beyond them.
SNAP_MARGIN_M = 0.5


class RoadSnap:
    """Moves the off-road points of global predictions (N, K, T, 2) onto the drivable area.

    maps: the drivable-area masks; locations: each target's map; current_xy (N, ≥2): each
    agent's global position at the target time (agents off the drivable area are left alone);
    radius_m: how far a point may move."""

    def __init__(
        self,
        maps: DrivableMaps,
        locations: Sequence[str],
        current_xy: np.ndarray,
        *,
        radius_m: float,
        margin_m: float = SNAP_MARGIN_M,
    ):
        if radius_m <= 0:
            raise ValueError(f"radius_m must be positive, got {radius_m}")
        self.maps, self.locations = maps, list(locations)
        current_xy = np.asarray(current_xy, float)[:, :2]
        # the targets whose agents are on the drivable area: only theirs are moved
        self.on_road = np.array([maps.drivable(loc, xy) for loc, xy in zip(locations, current_xy)])
        self.radius_px = int(round(radius_m * PIXELS_PER_METER))
        self.margin_px = int(round(margin_m * PIXELS_PER_METER))
        self.reach = self.radius_px + self.margin_px  # how far from a point a landing is sought
        m = self.margin_px
        yy, xx = np.mgrid[-m : m + 1, -m : m + 1]
        self.disk = yy**2 + xx**2 <= m * m
        self.moved = 0  # points moved by the calls so far

    def __call__(self, pred: np.ndarray) -> np.ndarray:
        """pred (N, K, T, 2) global xy, in the order of `locations` → a copy with the points
        moved."""
        out = np.array(pred, dtype=np.float64, copy=True)
        if len(out) != len(self.locations):
            raise ValueError(f"{len(out)} predictions for {len(self.locations)} targets")
        for i in np.nonzero(self.on_road)[0]:
            mask = self.maps.masks[self.locations[i]]
            off = ~self.maps.drivable(self.locations[i], out[i])  # (K, T)
            for k in np.nonzero(off.any(1))[0]:
                self._snap_mode(mask, out[i, k], off[k])
        return out.astype(np.asarray(pred).dtype, copy=False)

    def _snap_mode(self, mask: np.ndarray, mode: np.ndarray, off: np.ndarray) -> None:
        """Moves the `off` points of one mode (T, 2) in place. The drivable area is eroded by
        the margin once, over the window that the mode's off-road points can reach."""
        reach = self.reach
        pixels = np.floor(mode[off] * PIXELS_PER_METER).astype(np.int64)  # (P, 2): col, row
        c0, r0 = np.maximum(pixels.min(0) - reach, 0)
        c1, r1 = np.maximum(pixels.max(0) + reach + 1, 0)
        window = mask[r0:r1, c0:c1] > 0
        if not window.any():
            return
        if self.margin_px:  # (outside the canvas counts as off the road, as in OffRoadRate)
            window = ndimage.binary_erosion(window, structure=self.disk, border_value=0)
        for t, (col, row) in zip(np.nonzero(off)[0], pixels):
            moved = self._nearest_inside(window, r0, c0, row, col, mode[t])
            if moved is not None:
                mode[t] = moved
                self.moved += 1

    def _nearest_inside(
        self, window: np.ndarray, r0: int, c0: int, row: int, col: int, xy: np.ndarray
    ) -> np.ndarray | None:
        """The centre of the nearest pixel of the eroded `window` (its corner at canvas pixel
        r0, c0) within the radius of xy (global metres; canvas pixel row, col), or None."""
        reach = self.reach
        top, left = max(row - reach, r0), max(col - reach, c0)
        near = window[
            top - r0 : max(row + reach + 1 - r0, 0), left - c0 : max(col + reach + 1 - c0, 0)
        ]
        rows, cols = np.nonzero(near)
        if len(rows) == 0:
            return None
        centre = np.stack([cols + left + 0.5, rows + top + 0.5], 1)  # pixel centres, x then y
        d2 = ((centre - xy * PIXELS_PER_METER) ** 2).sum(1)
        j = int(d2.argmin())
        if d2[j] > self.radius_px**2:
            return None
        return centre[j] / PIXELS_PER_METER


__all__ = ["RoadSnap", "SNAP_MARGIN_M"]
