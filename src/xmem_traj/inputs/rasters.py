"""The inputs of the devkit's MTP and CoverNet, as the devkit makes them:

- "raster": its input representation of each target (StaticLayerRasterizer: the map
  expansion's drivable area, pedestrian crossings, walkways and lane centre lines;
  AgentBoxesWithFadedHistory: every agent's box over the past 2 s, fading; combined by its
  Rasterizer), agent at the bottom centre heading up, (N, 3, H, W) uint8;
- "agent_state": the agent state vector, (N, 3) float32: speed, acceleration and heading
  change rate from PredictHelper (NaN, where a track is too short, becomes 0).

Both are built once per split and cached, keyed by the targets, the content of the files they
read (annotations, map expansion), the raster's geometry and the devkit's version."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
from importlib.metadata import version
from pathlib import Path

import numpy as np
from nuscenes.prediction.input_representation.agents import AgentBoxesWithFadedHistory
from nuscenes.prediction.input_representation.combinators import Rasterizer
from nuscenes.prediction.input_representation.interface import InputRepresentation
from nuscenes.prediction.input_representation.static_layers import StaticLayerRasterizer
from tqdm.auto import tqdm

from ..cache import cached_arrays, file_sha256
from ..cores import usable_cores
from ..data.maps import has_map_expansion
from ..errors import DatasetError
from .base import InputProvider, PrepareContext, SplitTargets, register_input
from .neighbours import predict_helper

log = logging.getLogger(__name__)

FORMAT = 1
MAP_LOCATIONS = (  # the devkit's StaticLayerRasterizer loads all four
    "boston-seaport",
    "singapore-hollandvillage",
    "singapore-onenorth",
    "singapore-queenstown",
)


def _sources(split: SplitTargets) -> dict:
    """What every devkit input of a split is made from: the targets and the tables' content."""
    targets = split.dataset.targets
    root = Path(targets.dataroot)
    return {
        "targets": split.dataset.fingerprint(),
        "annotations_sha256": file_sha256(root / targets.version / "sample_annotation.json"),
        "devkit": version("nuscenes-devkit"),
    }


class RasterInput(InputProvider):
    slots = ("raster",)

    def __init__(self, ctx: PrepareContext):
        self.ctx = ctx

    def identity(self, split: SplitTargets) -> dict:
        c, root = self.ctx.cfg.context, split.dataset.targets.dataroot
        if not has_map_expansion(root, MAP_LOCATIONS):
            raise DatasetError(
                f"MTP and CoverNet read the devkit's raster, whose StaticLayerRasterizer loads "
                f"the map expansion of all four nuScenes locations: install the map expansion "
                f"pack (v1.3) under {root}/maps/expansion, or leave mtp and covernet out"
            )
        expansion = Path(root) / "maps" / "expansion"
        return {
            "format": FORMAT,
            **_sources(split),
            "expansion_sha256": {m: file_sha256(expansion / f"{m}.json") for m in MAP_LOCATIONS},
            "geometry": [c.raster_resolution, c.raster_ahead, c.raster_behind, c.raster_side],
        }

    def representation(self) -> InputRepresentation:
        """The devkit's input representation at the configured geometry."""
        c, helper = self.ctx.cfg.context, predict_helper(self.ctx)
        extent = {
            "resolution": c.raster_resolution,
            "meters_ahead": c.raster_ahead,
            "meters_behind": c.raster_behind,
            "meters_left": c.raster_side,
            "meters_right": c.raster_side,
        }
        return InputRepresentation(
            StaticLayerRasterizer(helper, **extent),
            AgentBoxesWithFadedHistory(helper, **extent),
            Rasterizer(),
        )

    def build(self, split: SplitTargets) -> dict[str, np.ndarray]:
        run = self.ctx.cfg.run

        def draw() -> dict[str, np.ndarray]:
            rasters = draw_rasters(
                self.representation(),
                [(r.instance_token, r.sample_token) for r in split.records],
                self.ctx.cfg.context.raster_pixels,
                workers=run.prepare_workers or usable_cores(),
                progress=run.progress,
            )
            return {"raster": rasters}

        return cached_arrays(
            self.ctx.cfg.data.resolved_cache_dir(),
            "devkit_rasters",
            self.identity(split),
            len(split),
            draw,
            describe=f"(devkit raster, {split.dataset.split})",
        )


#: The representation the drawing processes use: set before they fork, so they inherit it
#: (the devkit's tables and maps, loaded once) instead of receiving it pickled.
_SHARED_REPRESENTATION: InputRepresentation | None = None


def _draw_one(job: tuple[int, str, str]) -> tuple[int, np.ndarray]:
    i, instance, sample = job
    return i, _SHARED_REPRESENTATION.make_input_representation(instance, sample)


def draw_rasters(
    representation: InputRepresentation,
    targets: list[tuple[str, str]],
    pixels: tuple[int, int],
    *,
    workers: int = 1,
    progress: bool = False,
) -> np.ndarray:
    """(N, 3, H, W) uint8: the devkit's input representation of each (instance, sample)
    target, drawn by `workers` forked processes (in this process where 1, or where the
    platform cannot fork). A raster depends on its target alone, so the bytes are the same
    whatever the worker count."""
    global _SHARED_REPRESENTATION
    height, width = pixels
    out = np.zeros((len(targets), 3, height, width), np.uint8)
    jobs = [(i, *target) for i, target in enumerate(targets)]
    bar = tqdm(total=len(jobs), desc="devkit rasters", unit="raster", disable=not progress)
    processes = min(workers, len(jobs)) if "fork" in multiprocessing.get_all_start_methods() else 1
    _SHARED_REPRESENTATION = representation
    try:
        with contextlib.ExitStack() as stack:
            drawn = map(_draw_one, jobs)
            if processes > 1:
                pool = stack.enter_context(multiprocessing.get_context("fork").Pool(processes))
                drawn = pool.imap_unordered(_draw_one, jobs, chunksize=8)
            for i, image in drawn:
                out[i] = image.transpose(2, 0, 1)[:, :height, :width]
                bar.update()
    finally:
        _SHARED_REPRESENTATION = None
        bar.close()
    log.info("devkit rasters: %d drawn by %d process(es)", len(jobs), max(processes, 1))
    return out


def agent_states(helper, records) -> np.ndarray:
    """(N, 3) float32: PredictHelper's velocity, acceleration and heading change rate of each
    target (NaN → 0), the devkit's agent state vector."""
    out = np.zeros((len(records), 3), np.float32)
    for i, rec in enumerate(records):
        args = (rec.instance_token, rec.sample_token)
        out[i] = (
            helper.get_velocity_for_agent(*args),
            helper.get_acceleration_for_agent(*args),
            helper.get_heading_change_rate_for_agent(*args),
        )
    return np.nan_to_num(out, nan=0.0)


class AgentStateInput(InputProvider):
    slots = ("agent_state",)

    def __init__(self, ctx: PrepareContext):
        self.ctx = ctx

    def build(self, split: SplitTargets) -> dict[str, np.ndarray]:
        return cached_arrays(
            self.ctx.cfg.data.resolved_cache_dir(),
            "agent_state",
            {"format": FORMAT, **_sources(split)},
            len(split),
            lambda: {"agent_state": agent_states(predict_helper(self.ctx), split.records)},
            describe=f"(agent state, {split.dataset.split})",
        )


register_input("raster", RasterInput)
register_input("agent_state", AgentStateInput)

__all__ = ["AgentStateInput", "RasterInput", "agent_states", "draw_rasters"]
