"""Write a synthetic world as a nuScenes dataset that the official devkit loads unmodified:
the 13 tables with their full fields, a map record and PNG, the map expansion (drivable area),
prediction_scenes.json, JPEG key frames (samples/) and optionally sweeps (sweeps/) for each
camera, and beside the tables the world's side file of cues (synth/cues.py). Scenes carry real
nuScenes names of the challenge splits (train, train_val, val). Same seed → same bytes."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from nuscenes.utils.data_classes import Box
from nuscenes.utils.splits import create_splits_scenes
from PIL import Image
from pyquaternion import Quaternion

from ..projection import box_to_camera, projected_hull
from ..data.world_cues import FORMAT, FRAME_FIELDS, SIDE_FILE
from .draw import draw_world, visibility_fraction
from .mapexp import LOCATION, MAP_EXTENTS, drivable_area, write_expansion
from .render import CAMERAS, make_camera
from .roads import City
from .scene import make_scene
from .vehicles import CUE_SOURCES

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
ANNOTATION_RANGE = 70.0
SAMPLES_PER_SCENE = 40
SWEEP_US = 83_333
FUTURE_SAMPLES = 12
TARGET_RANGE = 50.0


def scene_names(n: int) -> tuple[str, dict[str, list[str]]]:
    """Real scene names for n scenes, so that the devkit's split functions work →
    (version, {split: names}). Up to 10: v1.0-mini (mini_train, mini_val); more: v1.0-trainval
    with a fifth for val, a fifth for train_val and the rest for train."""
    if n <= 10:
        n_val = max(1, int(round(n * 0.2))) if n > 1 else 0
        splits = create_splits_scenes()
        return "v1.0-mini", {"mini_train": splits["mini_train"][:n - n_val],
                             "mini_val": splits["mini_val"][:n_val]}
    n_val = n_tv = max(1, int(round(n * 0.2)))
    return challenge_scene_names(n - n_val - n_tv, n_tv, n_val)


def challenge_scene_names(train: int, train_val: int, val: int) -> tuple[str, dict[str, list[str]]]:
    """v1.0-trainval names of the prediction challenge's splits: train = official
    train[200:], train_val = official train[:200], val = official val."""
    splits = create_splits_scenes()
    if train > 500 or train_val > 200 or val > 150:
        raise ValueError("at most 500 train, 200 train_val and 150 val scenes (the challenge's)")
    return "v1.0-trainval", {"train": splits["train"][200:200 + train],
                             "train_val": splits["train"][:train_val], "val": splits["val"][:val]}


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


def dataset_city(seed: int) -> City:
    """The city every scene of the dataset with this seed drives in (its map expansion)."""
    return City.random(np.random.default_rng([seed, 777]), MAP_EXTENTS[LOCATION])


def _jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _box(state: dict, size) -> Box:
    w, l, h = size
    return Box([state["x"], state["y"], h / 2], [w, l, h], Quaternion(axis=[0, 0, 1], angle=state["yaw"]))


def generate(out: str | Path, *, scenes: int | tuple[int, int, int] = 10, seed: int = 0,
             cameras: Sequence[str] = CAMERAS, sweeps: bool = False, width: int = 640,
             height: int = 360, target_stride: int = 2, workers: int = 0,
             progress: Callable[[str], None] | None = None) -> Path:
    """Write the dataset under `out` and return it. scenes: a count (see scene_names) or
    (train, train_val, val) scene counts of v1.0-trainval. Scenes are simulated and rendered
    by `workers` processes (0: one per CPU core); the bytes do not depend on how many."""
    out = Path(out)
    unknown = set(cameras) - set(CAMERAS)
    if unknown:
        raise ValueError(f"unknown cameras {sorted(unknown)}; choose from {CAMERAS}")
    version, splits = (challenge_scene_names(*scenes) if isinstance(scenes, tuple)
                       else scene_names(scenes))
    names = [name for split in splits.values() for name in split]
    if not names:
        raise ValueError("--scenes must be at least 1")
    writer = _DatasetWriter(out, seed=seed, cameras=cameras, sweeps=sweeps, width=width,
                            height=height, target_stride=target_stride)
    jobs = [(writer, si, name) for si, name in enumerate(names)]
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    with contextlib.ExitStack() as stack:
        mapper = map
        if workers > 1:
            mapper = stack.enter_context(ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("fork"))).map
        for si, part in enumerate(mapper(_write_scene, jobs)):  # in scene order, whoever wrote them
            if progress:
                progress(f"scene {si + 1}/{len(names)} ({names[si]})")
            writer.merge(part)
    writer.finish(version)
    log.info("wrote %s (%s, %d scenes, %d images)", out, version, len(names), writer.n_images)
    return out


def _write_scene(job) -> dict:
    writer, si, name = job
    return _SceneWriter(writer, si).write(name)


class _DatasetWriter:
    """The dataset's settings and static tables; merges the scenes' parts in scene order."""

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
        self.city = dataset_city(seed)
        self.prediction: dict[str, list[str]] = {}
        self.side = {"frames": {}, "agents": {}}        # the side file (synth/cues.py)
        self.n_images = 0

    def merge(self, part: dict) -> None:
        for table, records in part["tables"].items():
            self.tables.t[table].extend(records)
        self.prediction.update(part["prediction"])
        self.side["frames"].update(part["frames"])
        self.side["agents"].update(part["agents"])
        self.n_images += part["images"]

    def finish(self, version: str) -> None:
        """The map record and PNG, the map expansion, the tables, prediction_scenes.json and
        the side file."""
        tables, out = self.tables, self.out
        map_png = io.BytesIO()
        Image.new("L", (64, 64), 255).save(map_png, format="PNG")
        map_name = f"maps/{hashlib.md5(map_png.getvalue()).hexdigest()}.png"
        (out / "maps").mkdir(parents=True, exist_ok=True)
        (out / map_name).write_bytes(map_png.getvalue())
        tables.add("map", log_tokens=[r["token"] for r in tables.t["log"]], category="semantic_prior",
                   filename=map_name)
        write_expansion(out, [drivable_area(np.stack([a.x, a.y], 1), a.streets()) for a in self.city.avenues])
        (out / version).mkdir(parents=True, exist_ok=True)
        for table, records in tables.t.items():
            (out / version / f"{table}.json").write_text(json.dumps(records, indent=0))
        pred_path = out / "maps" / "prediction" / "prediction_scenes.json"
        pred_path.parent.mkdir(parents=True, exist_ok=True)
        pred_path.write_text(json.dumps(self.prediction, indent=0))
        side = {"format": FORMAT, "about": "synthetic world cue states (xmem_traj.synth.cues)",
                "frame_fields": list(FRAME_FIELDS), "sources": CUE_SOURCES, **self.side}
        (out / version / SIDE_FILE).write_text(json.dumps(side, separators=(",", ":")))


class _SceneWriter:
    """One scene: its own token generator (so scenes can be written in any order or in
    parallel), images written as rendered, records returned for the dataset to merge."""

    def __init__(self, dataset: _DatasetWriter, si: int):
        self.d, self.si = dataset, si  # the dataset's settings are read through self.d
        self.tables = _Tables(np.random.default_rng([dataset.seed, si, 999]))
        self.prediction: dict[str, list[str]] = {}
        self.side = {"frames": {}, "agents": {}}
        self.n_images = 0

    def _write(self, rel: str, data: bytes) -> None:
        path = self.d.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def write(self, name: str) -> dict:
        """Simulate the scene; write its images → its records, targets and cues."""
        si, tables = self.si, self.tables
        rng = np.random.default_rng([self.d.seed, si])
        scene = make_scene(rng, self.d.city)
        log_rec = tables.add("log", logfile=f"n015-2018-07-{11 + si % 18:02d}-11-54-40+0800",
                             vehicle="n015", date_captured=f"2018-07-{11 + si % 18:02d}",
                             location=LOCATION)
        base = 1531281439_000_000 + si * 86_400_000_000 + int(rng.integers(0, 10**6))
        cs = {ch: tables.add("calibrated_sensor", sensor_token=self.d.sensor_tok[ch],
                             translation=[float(v) for v in cam.translation],
                             rotation=cam.quaternion,
                             camera_intrinsic=[[float(v) for v in row] for row in cam.K])
              for ch, cam in self.d.rigs.items()}
        sample_ts = [base + k * 500_000 + int(rng.integers(-2000, 2000)) for k in range(SAMPLES_PER_SCENE)]
        scene_rec = tables.add("scene", log_token=log_rec["token"], nbr_samples=SAMPLES_PER_SCENE,
                               first_sample_token="", last_sample_token="", name=name,
                               description=f"synthetic xmem-traj scene {si} (seed {self.d.seed})")
        samples = [tables.add("sample", timestamp=ts, prev="", next="", scene_token=scene_rec["token"])
                   for ts in sample_ts]
        _link(samples)
        scene_rec["first_sample_token"], scene_rec["last_sample_token"] = samples[0]["token"], samples[-1]["token"]
        key_views, frame_cues = self._render_cameras(rng, si, scene, base, log_rec, cs, sample_ts, samples)
        instances = self._annotate(rng, name, scene, base, cs, sample_ts, samples, key_views)
        self._side_file(scene, base, instances, frame_cues)
        return {"tables": tables.t, "prediction": self.prediction, "frames": self.side["frames"],
                "agents": self.side["agents"], "images": self.n_images}

    def _render_cameras(self, rng, si, scene, base, log_rec, cs, sample_ts, samples):
        """Every camera's chain of key frames (and sweeps): ego poses, JPEGs, sample_data →
        {(k, channel): (ego pose record, agent-id buffer)} of the key frames, and per camera
        frame the cue rows of the agents it shows (agent index first)."""
        tables = self.tables
        cam_offset = {ch: int(rng.integers(-20_000, 40_000)) for ch in self.d.rigs}
        key_views, frame_cues = {}, {}
        for ch, cam in self.d.rigs.items():
            chain = []
            for k, ts_sample in enumerate(sample_ts):
                ts_key = ts_sample + cam_offset[ch]
                frames = [(ts_key, True)]
                if self.d.sweeps and k == 0:  # the cameras run before the scene's first sample
                    frames = [(ts_key - j * SWEEP_US + int(rng.integers(-3000, 3000)), False)
                              for j in range(3, 0, -1)] + frames
                if self.d.sweeps and k + 1 < len(sample_ts):
                    nxt = sample_ts[k + 1] + cam_offset[ch]
                    frames += [(ts_key + j * SWEEP_US + int(rng.integers(-3000, 3000)), False)
                               for j in range(1, 6) if ts_key + j * SWEEP_US < nxt - 40_000
                               and rng.random() > 0.03]  # the real data drops some sweeps
                for ts, is_key in frames:
                    t = (ts - base) / 1e6
                    ex, ey, eyaw = scene.ego_at(t)
                    pose = tables.add("ego_pose", timestamp=ts, rotation=list(Quaternion(axis=[0, 0, 1], angle=eyaw).elements),
                                      translation=[float(ex), float(ey), 0.0])
                    rgb, ids, faces = draw_world(scene, cam, t, np.random.default_rng([self.d.seed, si, ts]))
                    folder = "samples" if is_key else "sweeps"
                    filename = f"{folder}/{ch}/{log_rec['logfile']}__{ch}__{ts}.jpg"
                    self._write(filename, _jpeg(rgb))
                    self.n_images += 1
                    # A sweep belongs to the FOLLOWING key frame, as in nuScenes.
                    owner = samples[k] if is_key or ts < ts_key else samples[k + 1]
                    sd = tables.add(
                        "sample_data", sample_token=owner["token"], ego_pose_token=pose["token"],
                        calibrated_sensor_token=cs[ch]["token"], timestamp=ts, fileformat="jpg",
                        is_key_frame=is_key, height=self.d.height, width=self.d.width, filename=filename,
                        prev="", next="")
                    chain.append(sd)
                    frame_cues[sd["token"]] = self._cue_rows(scene, t, ids, faces, pose, cs[ch], cam)
                    if is_key:
                        key_views[(k, ch)] = (pose, ids)
            _link(chain)
        return key_views, frame_cues

    def _cue_rows(self, scene, t, ids, faces, pose, cs, cam) -> list[list]:
        """Per agent shown in a frame: [index, lamps..., faces..., unoccluded share]."""
        counts = np.bincount(ids.ravel(), minlength=len(scene.tracks) + 1)
        rows = []
        for i, shown in faces.items():
            if counts[i + 1] == 0:
                continue
            tr = scene.tracks[i]
            st = tr.at(t)
            hull = projected_hull(box_to_camera(_box(st, tr.size), pose, cs), cam.K, self.d.width, self.d.height)
            share = min(1.0, counts[i + 1] / hull.area) if hull is not None and hull.area > 0 else 0.0
            rows.append([i, int(st["brake"]), int(st["left"]), int(st["right"]), int(st["left_active"]),
                         int(st["right_active"]), int(shown["back"]), int(shown["front"]),
                         int(shown["left"]), int(shown["right"]), round(share, 3)])
        return rows

    def _annotate(self, rng, name, scene, base, cs, sample_ts, samples, key_views) -> dict[int, str]:
        """Contiguous annotation tracks while agents are within range of the ego, and the
        scene's prediction targets → instance token per annotated agent index."""
        tables = self.tables
        instances = {}
        for ti, tr in enumerate(scene.tracks):
            states = [tr.at((ts - base) / 1e6) for ts in sample_ts]
            egos = [scene.ego_at((ts - base) / 1e6) for ts in sample_ts]
            near = [np.hypot(s["x"] - e[0], s["y"] - e[1]) < ANNOTATION_RANGE for s, e in zip(states, egos)]
            if not any(near):
                continue
            first, last = near.index(True), len(near) - 1 - near[::-1].index(True)
            inst = tables.add("instance", category_token=self.d.cat_tok[tr.category],
                              nbr_annotations=last - first + 1, first_annotation_token="",
                              last_annotation_token="")
            instances[ti] = inst["token"]
            anns = []
            for k in range(first, last + 1):
                st, box = states[k], _box(states[k], tr.size)
                frac = self._visible_fraction(box, ti, k, cs, key_views)
                vis = "1" if frac < 0.4 else "2" if frac < 0.6 else "3" if frac < 0.8 else "4"
                dist = float(np.hypot(st["x"] - egos[k][0], st["y"] - egos[k][1]))
                anns.append(tables.add(
                    "sample_annotation", sample_token=samples[k]["token"], instance_token=inst["token"],
                    visibility_token=vis, attribute_tokens=[self.d.attr_tok[_attribute(tr, st)]],
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
                    if k + FUTURE_SAMPLES <= last and k % self.d.target_stride == 0 and near_enough and seen:
                        self.prediction.setdefault(name, []).append(f"{inst['token']}_{samples[k]['token']}")
        return instances

    def _visible_fraction(self, box, ti, k, cs, key_views) -> float:
        """Largest unoccluded share of the agent's projected box over the key frame's cameras."""
        frac = 0.0
        for ch, cam in self.d.rigs.items():
            pose, ids = key_views[(k, ch)]
            hull = projected_hull(box_to_camera(box, pose, cs[ch]), cam.K, self.d.width, self.d.height)
            if hull is not None:
                frac = max(frac, visibility_fraction(ids, ti + 1, hull.area))
        return frac

    def _side_file(self, scene, base: int, instances: dict[int, str], frame_cues: dict) -> None:
        """The scene's rows of the side file: annotated agents only, times in µs."""
        for sd_token, rows in frame_cues.items():
            kept = [[instances[r[0]], *r[1:]] for r in rows if r[0] in instances]
            if kept:
                self.side["frames"][sd_token] = kept
        us = lambda t: None if t is None else int(base + round(t * 1e6))  # noqa: E731
        for ti, token in instances.items():
            tr = scene.tracks[ti]
            self.side["agents"][token] = {
                "category": tr.category, "behaviour": tr.behaviour, "parked": tr.parked, "track": ti,
                "manoeuvres": [{"kind": m.kind, "side": m.side, "t_motion": us(m.t_motion),
                                "t_end": us(m.t_end),
                                "cues": [[kind, us(on), us(off)] for kind, on, off in m.cues]}
                               for m in tr.manoeuvres],
                "misleading": [[kind, us(on), us(off)] for kind, on, off in tr.misleading]}

def _attribute(tr, state) -> str:
    if tr.category == "human.pedestrian.adult":
        return "pedestrian.moving" if state["speed"] > 0.3 else "pedestrian.standing"
    if tr.category == "vehicle.bicycle":
        return "cycle.with_rider"
    if tr.parked:
        return "vehicle.parked"
    return "vehicle.moving" if state["speed"] > 0.5 else "vehicle.stopped"
