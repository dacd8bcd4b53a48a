"""Write a synthetic world as a nuScenes dataset that the official devkit loads unmodified:
the 13 tables with their full fields, a map record and PNG, the map expansion (made from the
SUMO city: mapexp.py), prediction_scenes.json, JPEG key frames (samples/) and optionally sweeps
(sweeps/) for each camera, and beside the tables the world's side file (data/world_file.py).
Scenes carry real nuScenes names of the challenge splits (train, train_val, val). Same seed →
same bytes, whatever the number of workers."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import logging
import multiprocessing
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from ..cores import usable_cores
from ..data.world_schema import FORMAT, FRAME_FIELDS, HEAD_FIELDS, SIDE_FILE, STATE_FIELDS
from .demand import DEMAND_SOURCES
from .ground import build_ground
from .mapexp import write_expansion
from .network import NETWORK_SOURCES, City, build_city
from .render import CAMERAS, make_camera
from .scene_writer import FUTURE_SAMPLES, SceneWriter, scene_base
from .signals import SIGNAL_SOURCES
from .tables import (
    ATTRIBUTES,
    CATEGORIES,
    VISIBILITY,
    Tables,
    challenge_scene_names,
    scene_names,
)
from .vehicles import CUE_SOURCES

log = logging.getLogger(__name__)

SAMPLES_PER_SCENE = 40


@functools.lru_cache(maxsize=4)
def dataset_city(seed: int) -> City:
    """The city every scene of the dataset with this seed drives in (its map expansion), built
    once per process into a temporary folder."""
    folder = tempfile.mkdtemp(prefix=f"xmem-city-{seed}-")
    return build_city(folder, seed)


_WRITER: "_DatasetWriter | None" = None  # the dataset being written (inherited by forked workers)


def generate(
    out: str | Path,
    *,
    scenes: int | tuple[int, int, int] = 10,
    seed: int = 0,
    cameras: Sequence[str] = CAMERAS,
    sweeps: bool = False,
    width: int = 640,
    height: int = 360,
    target_stride: int = 2,
    workers: int = 0,
    progress: Callable[[str], None] | None = None,
    samples: int = SAMPLES_PER_SCENE,
) -> Path:
    """Write the dataset under `out` and return it. scenes: a count (see scene_names) or
    (train, train_val, val) scene counts of v1.0-trainval; samples: key frames per scene (2 Hz).
    Scenes are simulated and rendered by `workers` processes (0: one per CPU core); the bytes
    do not depend on how many."""
    global _WRITER
    out = Path(out)
    unknown = set(cameras) - set(CAMERAS)
    if unknown:
        raise ValueError(f"unknown cameras {sorted(unknown)}; choose from {CAMERAS}")
    if samples < FUTURE_SAMPLES + 2:
        raise ValueError(f"samples must be at least {FUTURE_SAMPLES + 2} (a 6 s future and a past)")
    version, splits = (
        challenge_scene_names(*scenes) if isinstance(scenes, tuple) else scene_names(scenes)
    )
    names = [name for split in splits.values() for name in split]
    if not names:
        raise ValueError("--scenes must be at least 1")
    _WRITER = writer = _DatasetWriter(
        out,
        seed=seed,
        cameras=cameras,
        sweeps=sweeps,
        width=width,
        height=height,
        target_stride=target_stride,
        samples=samples,
    )
    try:
        _write_scenes(writer, names, workers, progress)
        writer.finish(version)
    finally:
        _WRITER = None
    log.info(
        "wrote %s (%s, %d scenes, %d images, %d scenes simulated again)",
        out,
        version,
        len(names),
        writer.n_images,
        writer.resimulated,
    )
    return out


def _write_scenes(
    writer: "_DatasetWriter", names: list[str], workers: int, progress: Callable | None
) -> None:
    """Every scene by `workers` processes (0: one per CPU core), merged in scene order."""
    jobs = list(enumerate(names))
    workers = min(workers or usable_cores(), len(jobs))
    with contextlib.ExitStack() as stack:
        mapper = map
        if workers > 1:
            context = multiprocessing.get_context("fork")
            mapper = stack.enter_context(ProcessPoolExecutor(workers, mp_context=context)).map
        for si, part in enumerate(mapper(_write_scene, jobs)):  # in order, whoever wrote them
            if progress:
                progress(f"scene {si + 1}/{len(names)} ({names[si]})")
            writer.merge(part)


def _write_scene(job) -> dict:
    si, name = job
    return SceneWriter(_WRITER, si).write(name)


class _DatasetWriter:
    """The dataset's settings, city and static tables; merges the scenes' parts in scene order."""

    def __init__(
        self,
        out: Path,
        *,
        seed: int,
        cameras: Sequence[str],
        sweeps: bool,
        width: int,
        height: int,
        target_stride: int,
        samples: int,
    ):
        self.out, self.seed, self.sweeps, self.samples = out, seed, sweeps, samples
        self.width, self.height, self.target_stride = width, height, target_stride
        self.tables = tables = Tables(np.random.default_rng([seed, 999]))
        self.cat_tok = {
            name: tables.add("category", name=name, description=name, index=i)["token"]
            for i, name in enumerate(CATEGORIES)
        }
        self.attr_tok = {
            name: tables.add("attribute", name=name, description=name)["token"]
            for name in ATTRIBUTES
        }
        for tok, level in VISIBILITY:
            tables.add(
                "visibility",
                token=tok,
                level=level,
                description=f"visibility of whole object is {level[1:]}%",
            )
        self.sensor_tok = {
            ch: tables.add("sensor", channel=ch, modality="camera")["token"] for ch in cameras
        }
        self.rigs = {ch: make_camera(ch, width, height) for ch in cameras}
        self.city = dataset_city(seed)
        self.ground = build_ground(self.city.net)
        self.prediction: dict[str, list[str]] = {}
        self.side = {"frames": {}, "heads": {}, "agents": {}}  # the side file (data/world_file.py)
        self.n_images = self.resimulated = 0

    def merge(self, part: dict) -> None:
        for table, records in part["tables"].items():
            self.tables.t[table].extend(records)
        self.prediction.update(part["prediction"])
        for key in self.side:
            self.side[key].update(part[key])
        self.n_images += part["images"]
        self.resimulated += part["attempts"] > 1

    def finish(self, version: str) -> None:
        """The map record and PNG, the map expansion, the tables, prediction_scenes.json and
        the side file."""
        tables, out = self.tables, self.out
        map_png = io.BytesIO()
        Image.new("L", (64, 64), 255).save(map_png, format="PNG")
        map_name = f"maps/{hashlib.md5(map_png.getvalue()).hexdigest()}.png"
        (out / "maps").mkdir(parents=True, exist_ok=True)
        (out / map_name).write_bytes(map_png.getvalue())
        tables.add(
            "map",
            log_tokens=[r["token"] for r in tables.t["log"]],
            category="semantic_prior",
            filename=map_name,
        )
        write_expansion(out, self.city.net)
        (out / version).mkdir(parents=True, exist_ok=True)
        for table, records in tables.t.items():
            (out / version / f"{table}.json").write_text(json.dumps(records, indent=0))
        pred_path = out / "maps" / "prediction" / "prediction_scenes.json"
        pred_path.parent.mkdir(parents=True, exist_ok=True)
        pred_path.write_text(json.dumps(self.prediction, indent=0))
        heads = {
            str(h.index): {
                "tls": h.tls,
                "link": h.link,
                "lane": h.lane,
                "x": round(h.x, 2),
                "y": round(h.y, 2),
                "z": h.z,
                "yaw": round(h.yaw, 4),
            }
            for h in _heads(self.city)
        }
        side = {
            "format": FORMAT,
            "about": "synthetic world: what caused what (xmem_traj.data.world_file)",
            "frame_fields": list(FRAME_FIELDS),
            "head_fields": list(HEAD_FIELDS),
            "state_fields": list(STATE_FIELDS),
            "sources": {
                "cues": CUE_SOURCES,
                "signals": SIGNAL_SOURCES,
                "demand": DEMAND_SOURCES,
                "network": NETWORK_SOURCES,
            },
            "signal_heads": heads,
            **self.side,
        }
        (out / version / SIDE_FILE).write_text(json.dumps(side, separators=(",", ":")))


def _heads(city: City):
    from .heads import signal_heads

    return signal_heads(city.net)


__all__ = [
    "challenge_scene_names",
    "dataset_city",
    "generate",
    "scene_base",
    "scene_names",
]
