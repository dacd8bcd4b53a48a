"""Write a synthetic world as a nuScenes dataset that the official devkit loads unmodified:
the 13 tables with their full fields, a map record and PNG, prediction_scenes.json, and JPEG
key frames (samples/) and optionally sweeps (sweeps/) for each camera. Same seed → same bytes."""
from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from nuscenes.utils.data_classes import Box
from nuscenes.utils.splits import create_splits_scenes
from PIL import Image
from pyquaternion import Quaternion

from ..errors import DatasetError
from ..projection import box_to_camera, projected_hull
from .render import CAMERAS, make_camera
from .scene import draw_world, make_scene, visibility_fraction

log = logging.getLogger(__name__)

CATEGORIES = [
    "human.pedestrian.adult", "human.pedestrian.child", "human.pedestrian.wheelchair",
    "human.pedestrian.stroller", "human.pedestrian.personal_mobility",
    "human.pedestrian.police_officer", "human.pedestrian.construction_worker", "animal",
    "vehicle.car", "vehicle.motorcycle", "vehicle.bicycle", "vehicle.bus.bendy",
    "vehicle.bus.rigid", "vehicle.truck", "vehicle.construction", "vehicle.emergency.ambulance",
    "vehicle.emergency.police", "vehicle.trailer", "movable_object.barrier",
    "movable_object.trafficcone", "movable_object.pushable_pullable", "movable_object.debris",
    "static_object.bicycle_rack",
]
ATTRIBUTES = ["vehicle.moving", "vehicle.stopped", "vehicle.parked", "cycle.with_rider",
              "cycle.without_rider", "pedestrian.sitting_lying_down", "pedestrian.standing",
              "pedestrian.moving"]
VISIBILITY = [("1", "v0-40"), ("2", "v40-60"), ("3", "v60-80"), ("4", "v80-100")]
ANNOTATION_RANGE = 55.0
SAMPLES_PER_SCENE = 40
SWEEP_US = 83_333
FUTURE_SAMPLES = 12
TARGET_RANGE = 40.0


def scene_names(n: int) -> tuple[str, list[str], list[str]]:
    """Real scene names, so that the devkit's split functions work → (version, train, val)."""
    splits = create_splits_scenes()
    n_val = max(1, int(round(n * 0.2))) if n > 1 else 0
    n_train = n - n_val
    if n <= 10:
        return "v1.0-mini", splits["mini_train"][:n_train], splits["mini_val"][:n_val]
    # Challenge 'train' is the official train list from index 200 on; 'val' is official val.
    return "v1.0-trainval", splits["train"][200:200 + n_train], splits["val"][:n_val]


class _Tables:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.t: dict[str, list[dict]] = {name: [] for name in (
            "category", "attribute", "visibility", "instance", "sensor", "calibrated_sensor",
            "ego_pose", "log", "scene", "sample", "sample_data", "sample_annotation", "map")}

    def token(self) -> str:
        return self.rng.bytes(16).hex()

    def add(self, table: str, **record) -> dict:
        record = {"token": record.pop("token", None) or self.token(), **record}
        self.t[table].append(record)
        return record


def _link(records: list[dict]) -> None:
    for a, b in zip(records, records[1:]):
        a["next"], b["prev"] = b["token"], a["token"]


def _jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _box(state: dict, size) -> Box:
    w, l, h = size
    return Box([state["x"], state["y"], h / 2], [w, l, h], Quaternion(axis=[0, 0, 1], angle=state["yaw"]))


def generate(out: str | Path, *, scenes: int = 10, seed: int = 0,
             cameras: Sequence[str] = CAMERAS, sweeps: bool = False, width: int = 640,
             height: int = 360, target_stride: int = 2,
             progress: Callable[[str], None] | None = None) -> Path:
    """Write the dataset under `out` and return it. See the module docstring."""
    out = Path(out)
    unknown = set(cameras) - set(CAMERAS)
    if unknown:
        raise ValueError(f"unknown cameras {sorted(unknown)}; choose from {CAMERAS}")
    if scenes < 1:
        raise ValueError("--scenes must be at least 1")
    version, train_names, val_names = scene_names(scenes)
    writer = _DatasetWriter(out, seed=seed, cameras=cameras, sweeps=sweeps, width=width,
                            height=height, target_stride=target_stride)
    for si, name in enumerate(train_names + val_names):
        if progress:
            progress(f"scene {si + 1}/{scenes} ({name})")
        writer.add_scene(si, name)
    writer.finish(version)
    log.info("wrote %s (%s, %d scenes, %d images)", out, version, scenes, writer.n_images)
    return out


class _DatasetWriter:
    """Accumulates the tables scene by scene (images are written as they are rendered)."""

    def __init__(self, out: Path, *, seed: int, cameras: Sequence[str], sweeps: bool, width: int,
                 height: int, target_stride: int):
        self.out, self.seed, self.sweeps = out, seed, sweeps
        self.width, self.height, self.target_stride = width, height, target_stride
        self.tables = tables = _Tables(np.random.default_rng([seed, 999]))
        self.cat_tok = {name: tables.add("category", name=name, description=name, index=i)["token"]
                        for i, name in enumerate(CATEGORIES)}
        self.attr_tok = {name: tables.add("attribute", name=name, description=name)["token"]
                         for name in ATTRIBUTES}
        for tok, level in VISIBILITY:
            tables.add("visibility", token=tok, level=level,
                       description=f"visibility of whole object is {level[1:]}%")
        self.sensor_tok = {ch: tables.add("sensor", channel=ch, modality="camera")["token"]
                           for ch in cameras}
        self.rigs = {ch: make_camera(ch, width, height) for ch in cameras}
        self.prediction: dict[str, list[str]] = {}
        self.n_images = 0

    def _write(self, rel: str, data: bytes) -> None:
        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def add_scene(self, si: int, name: str) -> None:
        """Simulate scene si and add its log, sensors, samples, images and annotations."""
        tables = self.tables
        rng = np.random.default_rng([self.seed, si])
        scene = make_scene(rng)
        log_rec = tables.add("log", logfile=f"n015-2018-07-{11 + si % 18:02d}-11-54-40+0800",
                             vehicle="n015", date_captured=f"2018-07-{11 + si % 18:02d}",
                             location="boston-seaport")
        base = 1531281439_000_000 + si * 86_400_000_000 + int(rng.integers(0, 10**6))
        cs = {ch: tables.add("calibrated_sensor", sensor_token=self.sensor_tok[ch],
                             translation=[float(v) for v in cam.translation],
                             rotation=cam.quaternion,
                             camera_intrinsic=[[float(v) for v in row] for row in cam.K])
              for ch, cam in self.rigs.items()}
        sample_ts = [base + k * 500_000 + int(rng.integers(-2000, 2000)) for k in range(SAMPLES_PER_SCENE)]
        scene_rec = tables.add("scene", log_token=log_rec["token"], nbr_samples=SAMPLES_PER_SCENE,
                               first_sample_token="", last_sample_token="", name=name,
                               description=f"synthetic xmem-traj scene {si} (seed {self.seed})")
        samples = [tables.add("sample", timestamp=ts, prev="", next="", scene_token=scene_rec["token"])
                   for ts in sample_ts]
        _link(samples)
        scene_rec["first_sample_token"], scene_rec["last_sample_token"] = samples[0]["token"], samples[-1]["token"]
        key_views = self._render_cameras(rng, si, scene, base, log_rec, cs, sample_ts, samples)
        self._annotate(rng, name, scene, base, cs, sample_ts, samples, key_views)

    def _render_cameras(self, rng, si, scene, base, log_rec, cs, sample_ts, samples) -> dict:
        """Every camera's chain of key frames (and sweeps): ego poses, JPEGs, sample_data
        → {(k, channel): (ego pose record, agent-id buffer)} of the key frames."""
        tables = self.tables
        cam_offset = {ch: int(rng.integers(-20_000, 40_000)) for ch in self.rigs}
        key_views = {}
        for ch, cam in self.rigs.items():
            chain = []
            for k, ts_sample in enumerate(sample_ts):
                ts_key = ts_sample + cam_offset[ch]
                frames = [(ts_key, True)]
                if self.sweeps and k == 0:  # the cameras run before the scene's first sample
                    frames = [(ts_key - j * SWEEP_US + int(rng.integers(-3000, 3000)), False)
                              for j in range(3, 0, -1)] + frames
                if self.sweeps and k + 1 < len(sample_ts):
                    nxt = sample_ts[k + 1] + cam_offset[ch]
                    frames += [(ts_key + j * SWEEP_US + int(rng.integers(-3000, 3000)), False)
                               for j in range(1, 6) if ts_key + j * SWEEP_US < nxt - 40_000
                               and rng.random() > 0.03]  # the real data drops some sweeps
                for ts, is_key in frames:
                    t = (ts - base) / 1e6
                    ex, ey, eyaw = scene.ego_at(t)
                    pose = tables.add("ego_pose", timestamp=ts, rotation=list(Quaternion(axis=[0, 0, 1], angle=eyaw).elements),
                                      translation=[float(ex), float(ey), 0.0])
                    rgb, ids = draw_world(scene, cam, t, np.random.default_rng([self.seed, si, ts]))
                    folder = "samples" if is_key else "sweeps"
                    filename = f"{folder}/{ch}/{log_rec['logfile']}__{ch}__{ts}.jpg"
                    self._write(filename, _jpeg(rgb))
                    self.n_images += 1
                    # A sweep belongs to the FOLLOWING key frame, as in nuScenes.
                    owner = samples[k] if is_key or ts < ts_key else samples[k + 1]
                    chain.append(tables.add(
                        "sample_data", sample_token=owner["token"], ego_pose_token=pose["token"],
                        calibrated_sensor_token=cs[ch]["token"], timestamp=ts, fileformat="jpg",
                        is_key_frame=is_key, height=self.height, width=self.width, filename=filename,
                        prev="", next=""))
                    if is_key:
                        key_views[(k, ch)] = (pose, ids)
            _link(chain)
        return key_views

    def _annotate(self, rng, name, scene, base, cs, sample_ts, samples, key_views) -> None:
        """Contiguous annotation tracks while agents are within range of the ego, and the
        scene's prediction targets."""
        tables = self.tables
        for ti, tr in enumerate(scene.tracks):
            states = [tr.at((ts - base) / 1e6) for ts in sample_ts]
            egos = [scene.ego_at((ts - base) / 1e6) for ts in sample_ts]
            near = [np.hypot(s["x"] - e[0], s["y"] - e[1]) < ANNOTATION_RANGE for s, e in zip(states, egos)]
            if not any(near):
                continue
            first, last = near.index(True), len(near) - 1 - near[::-1].index(True)
            inst = tables.add("instance", category_token=self.cat_tok[tr.category],
                              nbr_annotations=last - first + 1, first_annotation_token="",
                              last_annotation_token="")
            anns = []
            for k in range(first, last + 1):
                st, box = states[k], _box(states[k], tr.size)
                frac = self._visible_fraction(box, ti, k, cs, key_views)
                vis = "1" if frac < 0.4 else "2" if frac < 0.6 else "3" if frac < 0.8 else "4"
                dist = float(np.hypot(st["x"] - egos[k][0], st["y"] - egos[k][1]))
                anns.append(tables.add(
                    "sample_annotation", sample_token=samples[k]["token"], instance_token=inst["token"],
                    visibility_token=vis, attribute_tokens=[self.attr_tok[_attribute(tr, st)]],
                    translation=[float(v) for v in box.center], size=list(tr.size),
                    rotation=[float(v) for v in box.orientation.elements], prev="", next="",
                    num_lidar_pts=int(4000 * max(frac, 0.05) / (1 + dist / 4) ** 2),
                    num_radar_pts=int(rng.integers(0, 4)) if tr.category.startswith("vehicle") else 0))
            _link(anns)
            inst["first_annotation_token"], inst["last_annotation_token"] = anns[0]["token"], anns[-1]["token"]
            if tr.category.startswith("vehicle") and not tr.parked:
                for k in range(first, last + 1):
                    # Targets: a full 6 s future, and seen well at the target sample (within
                    # TARGET_RANGE of the ego, visibility >= 2), every target_stride-th sample.
                    near_enough = np.hypot(states[k]["x"] - egos[k][0], states[k]["y"] - egos[k][1]) < TARGET_RANGE
                    seen = anns[k - first]["visibility_token"] >= "2"
                    if k + FUTURE_SAMPLES <= last and k % self.target_stride == 0 and near_enough and seen:
                        self.prediction.setdefault(name, []).append(f"{inst['token']}_{samples[k]['token']}")

    def _visible_fraction(self, box, ti, k, cs, key_views) -> float:
        """Largest unoccluded share of the agent's projected box over the key frame's cameras."""
        frac = 0.0
        for ch, cam in self.rigs.items():
            pose, ids = key_views[(k, ch)]
            hull = projected_hull(box_to_camera(box, pose, cs[ch]), cam.K, self.width, self.height)
            if hull is not None:
                frac = max(frac, visibility_fraction(ids, ti + 1, hull.area))
        return frac

    def finish(self, version: str) -> None:
        """The map record and PNG, the tables and prediction_scenes.json."""
        tables, out = self.tables, self.out
        map_png = io.BytesIO()
        Image.new("L", (64, 64), 255).save(map_png, format="PNG")
        map_name = f"maps/{hashlib.md5(map_png.getvalue()).hexdigest()}.png"
        self._write(map_name, map_png.getvalue())
        tables.add("map", log_tokens=[r["token"] for r in tables.t["log"]], category="semantic_prior",
                   filename=map_name)
        (out / version).mkdir(parents=True, exist_ok=True)
        for table, records in tables.t.items():
            (out / version / f"{table}.json").write_text(json.dumps(records, indent=0))
        pred_path = out / "maps" / "prediction" / "prediction_scenes.json"
        pred_path.parent.mkdir(parents=True, exist_ok=True)
        pred_path.write_text(json.dumps(self.prediction, indent=0))


def _attribute(tr, state) -> str:
    if tr.category == "human.pedestrian.adult":
        return "pedestrian.moving" if state["speed"] > 0.3 else "pedestrian.standing"
    if tr.category == "vehicle.bicycle":
        return "cycle.with_rider"
    if tr.parked:
        return "vehicle.parked"
    return "vehicle.moving" if state["speed"] > 0.5 else "vehicle.stopped"


def version_of(dataroot: str | Path) -> str:
    """The one table version a dataroot holds (a v1.0-*/ folder with scene.json)."""
    found = sorted(p.parent.name for p in Path(dataroot).glob("v1.0-*/scene.json"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise DatasetError(f"no nuScenes tables (v1.0-*/scene.json) under {dataroot}; "
                           "pass --dataroot the folder that holds v1.0-mini/ or v1.0-trainval/")
    raise DatasetError(f"{dataroot} holds several table versions {found}; pass --version")

