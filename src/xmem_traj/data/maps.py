"""The map around an agent: the map expansion's drivable area, read through the devkit's
NuScenesMap exactly as its OffRoadRate metric reads it (one mask per location at 10 px/m, rows
along y, origin at the canvas's south-west corner), and its raster in the agent frame — the
head's map input, where side streets, junctions and the road's bends show.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DatasetError

PIXELS_PER_METER = 10
#: The agent-frame raster (devkit agent frame: heading along +y, x to the right), in metres:
#: lateral x over MAP_X, along y over MAP_Y, in MAP_CELL cells; each cell is the drivable share
#: of SUPERSAMPLE² points in it.
MAP_X = (-24.0, 24.0)
MAP_Y = (-8.0, 56.0)
MAP_CELL = 2.0
SUPERSAMPLE = 3
MAP_SHAPE = (
    int(round((MAP_Y[1] - MAP_Y[0]) / MAP_CELL)),
    int(round((MAP_X[1] - MAP_X[0]) / MAP_CELL)),
)


def record_locations(nusc, records) -> list[str]:
    """The map location (its log's `location`) of each record's scene."""
    where = {s["name"]: nusc.get("log", s["log_token"])["location"] for s in nusc.scene}
    return [where[r.scene_name] for r in records]


def has_map_expansion(dataroot: str | Path, locations) -> bool:
    return all(
        (Path(dataroot) / "maps" / "expansion" / f"{loc}.json").exists() for loc in locations
    )


def _grid_points() -> np.ndarray:
    """(H·W·S², 2) agent-frame sample points, cell by cell (row-major over the raster)."""
    h, w = MAP_SHAPE
    sub = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE * MAP_CELL
    ys = (MAP_Y[0] + np.arange(h)[:, None] * MAP_CELL + sub[None]).reshape(h, 1, SUPERSAMPLE, 1)
    xs = (MAP_X[0] + np.arange(w)[:, None] * MAP_CELL + sub[None]).reshape(1, w, 1, SUPERSAMPLE)
    ys, xs = np.broadcast_arrays(ys, xs)
    return np.stack([xs.ravel(), ys.ravel()], 1)


_POINTS = _grid_points()


class DrivableMaps:
    """Drivable-area masks of the locations a dataset drives in (what OffRoadRate scores on),
    and agent-frame rasters cut from them."""

    def __init__(self, masks: dict[str, np.ndarray]):
        self.masks = masks

    @classmethod
    def load(cls, dataroot: str | Path, locations: Sequence[str]) -> "DrivableMaps":
        """The devkit's masks (NuScenesMap.get_map_mask over the whole canvas) for `locations`
        only (the devkit's metric loads all four, ~3 GB)."""
        from nuscenes.map_expansion.map_api import NuScenesMap

        masks = {}
        for loc in sorted(set(locations)):
            try:
                nusc_map = NuScenesMap(dataroot=str(dataroot), map_name=loc)
            except (ValueError, KeyError, TypeError) as err:  # (JSONDecodeError is a ValueError)
                path = Path(dataroot) / "maps" / "expansion" / f"{loc}.json"
                raise DatasetError(
                    f"map expansion {path} cannot be read by the devkit "
                    f"({type(err).__name__}: {err}); it may be truncated"
                ) from None
            masks[loc] = nusc_map.get_map_mask(
                patch_box=None, patch_angle=0, layer_names=["drivable_area"], canvas_size=None
            )[0]
        return cls(masks)

    def drivable(self, location: str, xy: np.ndarray) -> np.ndarray:
        """Global points (…, 2) → (…) bool: on the drivable area (outside the canvas: False)."""
        mask = self.masks[location]
        rows = np.floor(xy[..., 1] * PIXELS_PER_METER).astype(np.int64)
        cols = np.floor(xy[..., 0] * PIXELS_PER_METER).astype(np.int64)
        inside = (rows >= 0) & (rows < mask.shape[0]) & (cols >= 0) & (cols < mask.shape[1])
        out = np.zeros(xy.shape[:-1], bool)
        out[inside] = mask[rows[inside], cols[inside]] > 0
        return out

    def rasters(
        self, locations: Sequence[str], translations: np.ndarray, yaws: np.ndarray
    ) -> np.ndarray:
        """Per agent (location, global xy (N, ≥2), yaw (N,)) → (N, H, W) float32: the drivable
        share of each MAP_SHAPE cell around it, in its frame (rows: along its heading, from
        MAP_Y[0] on; columns: from its left to its right)."""
        n = len(locations)
        out = np.zeros((n, *MAP_SHAPE), np.float32)
        angle = np.pi / 2 - np.asarray(yaws, float)  # devkit angle_of_rotation
        c, s = np.cos(-angle), np.sin(-angle)  # agent frame → global
        px, py = _POINTS[:, 0], _POINTS[:, 1]
        for i, loc in enumerate(locations):
            xy = np.stack(
                [
                    c[i] * px - s[i] * py + translations[i][0],
                    s[i] * px + c[i] * py + translations[i][1],
                ],
                1,
            )
            hits = self.drivable(loc, xy).reshape(*MAP_SHAPE, SUPERSAMPLE * SUPERSAMPLE)
            out[i] = hits.mean(-1)
        return out


__all__ = [
    "DrivableMaps",
    "MAP_SHAPE",
    "PIXELS_PER_METER",
    "has_map_expansion",
    "record_locations",
]
