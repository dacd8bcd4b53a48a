"""The map input: the map expansion's drivable area around each target, rasterised in its
frame (slot "map", (N, H, W) drivable share per cell; data/maps.py says how), built once per
split and kept in the cache (keyed by the targets, the expansion files' content and the
raster's geometry)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..cache import cached_arrays, file_sha256
from ..data import maps
from ..errors import DatasetError
from .base import InputProvider, PrepareContext, SplitTargets, register_input

RASTER_FORMAT = 1


class MapInput(InputProvider):
    slots = ("map",)

    def __init__(self, ctx: PrepareContext):
        self.ctx = ctx

    def identity(self, split: SplitTargets) -> dict:
        root = Path(self.ctx.source.dataroot) / "maps" / "expansion"
        files = {loc: file_sha256(root / f"{loc}.json") for loc in sorted(set(split.locations))}
        geometry = {
            "x": maps.MAP_X,
            "y": maps.MAP_Y,
            "cell": maps.MAP_CELL,
            "supersample": maps.SUPERSAMPLE,
        }
        return {
            "format": RASTER_FORMAT,
            "targets": split.dataset.fingerprint(),
            "expansion_sha256": files,
            "geometry": geometry,
        }

    def build(self, split: SplitTargets) -> dict[str, np.ndarray]:
        def rasterise() -> dict[str, np.ndarray]:
            drivable = self.ctx.drivable_maps(split.locations)
            records = split.records
            return {
                "map": drivable.rasters(
                    split.locations,
                    np.array([r.translation for r in records]).reshape(-1, 3),
                    np.array([r.yaw for r in records]),
                )
            }

        return cached_arrays(
            self.ctx.cfg.data.resolved_cache_dir(),
            "rasters",
            self.identity(split),
            len(split),
            rasterise,
            describe=f"(map, {split.dataset.split})",
        )


def check_map_expansion(dataroot: str, locations) -> None:
    """DatasetError unless every location has its map expansion file."""
    if not maps.has_map_expansion(dataroot, locations):
        raise DatasetError(
            f"no map expansion (maps/expansion/{{{','.join(sorted(locations))}}}"
            f".json) under {dataroot}: install the nuScenes map expansion pack "
            "there, or pass --no-map (the head then sees the past track only)"
        )


register_input("map", MapInput)

__all__ = ["MapInput", "check_map_expansion"]
