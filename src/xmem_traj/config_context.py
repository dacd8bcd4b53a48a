"""The context group of TrainConfig: what the context inputs hold — the neighbours every head
reads (inputs/neighbours.py), the devkit's input raster of MTP and CoverNet
(inputs/rasters.py) and CoverNet's trajectory set (inputs/lattice.py). Defaults live here, as
the other groups' live in config_groups.py."""

from __future__ import annotations

from dataclasses import dataclass

from .config_fields import _f


@dataclass
class ContextConfig:
    """The neighbours, the devkit's raster (MTP, CoverNet) and CoverNet's lattice."""

    neighbours_max: int = _f(
        8, "neighbours per target: the nearest annotated agents at the target sample", min=1
    )
    neighbour_radius: float = _f(
        40.0, "metres: agents farther from the target at the target sample are left out", min=1.0
    )
    raster_resolution: float = _f(
        1.0,
        "metres per pixel of MTP's and CoverNet's input raster (the devkit's "
        "StaticLayerRasterizer + AgentBoxesWithFadedHistory); 1.0 with the default extent: "
        "50×50 pixels (chosen on train_val: as good as 0.5 at half the cost on a CPU); the "
        "devkit's own: 0.1 (500×500)",
        min=0.01,
    )
    raster_ahead: float = _f(40.0, "metres of the raster ahead of the agent (devkit: 40)", min=1.0)
    raster_behind: float = _f(10.0, "metres of the raster behind the agent (devkit: 10)", min=0.0)
    raster_side: float = _f(
        25.0, "metres of the raster to the agent's left and to its right (devkit: 25)", min=1.0
    )
    lattice_eps: float = _f(
        2.0,
        "metres: CoverNet's trajectory set is a greedy ε-cover of the train split's futures "
        "(each covered future within ε of a member at every step; the paper's sets: 2, 4, 8; "
        "2 chosen on train_val)",
        min=0.1,
    )
    lattice_futures: int = _f(
        5000,
        "at most this many train futures (an evenly spaced subset) are candidates and are "
        "covered by CoverNet's set (the cover compares every pair)",
        min=1,
    )

    @property
    def raster_pixels(self) -> tuple[int, int]:
        """(height, width) of the raster in pixels, as the devkit's rasterizers size it."""
        res = self.raster_resolution
        return int((self.raster_ahead + self.raster_behind) / res), int(2 * self.raster_side / res)


__all__ = ["ContextConfig"]
