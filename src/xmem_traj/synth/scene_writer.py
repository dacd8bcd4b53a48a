"""One scene of the synthetic dataset: simulated (scene.py), rendered through every camera,
annotated while its agents are in range of the ego, its prediction targets picked and its
side-file rows gathered (writer.py merges the scenes in order)."""

from __future__ import annotations

import numpy as np
from pyquaternion import Quaternion

from .camgeom import hull_area, world_to_camera
from .draw import HEAD_ID_BASE, draw_world, visibility_fraction
from .mapexp import LOCATION
from .scene import make_scene
from .sidefile import agent_box, agent_entry, frame_rows, head_rows
from .tables import Tables, attribute, jpeg, link

ANNOTATION_RANGE = 70.0
SWEEP_US = 83_333
FUTURE_SAMPLES = 12
TARGET_RANGE = 50.0
HISTORY_S = 2.5  # the side file's states reach this far before an agent's first annotation


def _scene_clock(seed: int, si: int) -> tuple[np.random.Generator, int]:
    """A scene's generator of the writer's draws and its base timestamp (µs; scene time 0)."""
    rng = np.random.default_rng([seed, si, 7])
    return rng, 1533151603_000_000 + si * 86_400_000_000 + int(rng.integers(0, 10**6))


def scene_base(seed: int, si: int) -> int:
    """The timestamp (µs) of scene time 0 of scene si of the dataset `seed`: a frame's scene
    time is (timestamp - scene_base) / 1e6."""
    return _scene_clock(seed, si)[1]


class SceneWriter:
    """One scene: its own token generator (so scenes can be written in any order or in
    parallel), images written as rendered, records returned for the dataset to merge."""

    def __init__(self, dataset, si: int):
        self.d, self.si = dataset, si  # the dataset's settings are read through self.d
        self.tables = Tables(np.random.default_rng([dataset.seed, si, 999]))
        self.prediction: dict[str, list[str]] = {}
        self.side = {"frames": {}, "heads": {}, "agents": {}}
        self.n_images = 0

    def _write(self, rel: str, data: bytes) -> None:
        path = self.d.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def write(self, name: str) -> dict:
        """Simulate the scene; write its images → its records, targets and side-file rows."""
        si, tables, d = self.si, self.tables, self.d
        scene = make_scene(d.city, d.seed, si, seconds=(d.samples - 1) * 0.5)
        rng, base = _scene_clock(d.seed, si)
        log_rec = tables.add(
            "log",
            logfile=f"n008-2018-08-{1 + si % 28:02d}-15-16-36-0400",
            vehicle="n008",
            date_captured=f"2018-08-{1 + si % 28:02d}",
            location=LOCATION,
        )
        cs = {
            ch: tables.add(
                "calibrated_sensor",
                sensor_token=d.sensor_tok[ch],
                translation=[float(v) for v in cam.translation],
                rotation=cam.quaternion,
                camera_intrinsic=[[float(v) for v in row] for row in cam.K],
            )
            for ch, cam in d.rigs.items()
        }
        sample_ts = [base + k * 500_000 + int(rng.integers(-2000, 2000)) for k in range(d.samples)]
        scene_rec = tables.add(
            "scene",
            log_token=log_rec["token"],
            nbr_samples=d.samples,
            first_sample_token="",
            last_sample_token="",
            name=name,
            description=f"synthetic xmem-traj scene {si} (seed {d.seed})",
        )
        samples = [
            tables.add("sample", timestamp=ts, prev="", next="", scene_token=scene_rec["token"])
            for ts in sample_ts
        ]
        link(samples)
        scene_rec["first_sample_token"], scene_rec["last_sample_token"] = (
            samples[0]["token"],
            samples[-1]["token"],
        )
        key_views, rows = self._render_cameras(rng, scene, base, log_rec, cs, sample_ts, samples)
        instances = self._annotate(rng, name, scene, base, cs, sample_ts, samples, key_views)
        self._side_file(scene, base, sample_ts, instances, rows)
        return {
            "tables": tables.t,
            "prediction": self.prediction,
            **self.side,
            "images": self.n_images,
            "attempts": scene.attempts,
        }

    def _frames(self, rng, ts_key: int, k: int, sample_ts: list[int]) -> list[tuple[int, bool]]:
        """The camera's frames from key frame k to the next: (timestamp, is key frame)."""
        frames = [(ts_key, True)]
        if self.d.sweeps and k == 0:  # the cameras run before the scene's first sample
            frames = [
                (ts_key - j * SWEEP_US + int(rng.integers(-3000, 3000)), False)
                for j in range(3, 0, -1)
            ] + frames
        if self.d.sweeps and k + 1 < len(sample_ts):
            nxt = sample_ts[k + 1] + (ts_key - sample_ts[k])
            frames += [
                (ts_key + j * SWEEP_US + int(rng.integers(-3000, 3000)), False)
                for j in range(1, 6)
                if ts_key + j * SWEEP_US < nxt - 40_000 and rng.random() > 0.03
            ]  # the real data drops some sweeps
        return frames

    def _render_cameras(self, rng, scene, base, log_rec, cs, sample_ts, samples):
        """Every camera's chain of key frames (and sweeps): ego poses, JPEGs, sample_data →
        {(k, channel): (ego pose record, id buffer)} of the key frames, and per camera frame
        the side file's rows (agent rows with the track index first, head rows)."""
        tables, d = self.tables, self.d
        cam_offset = {ch: int(rng.integers(-20_000, 40_000)) for ch in d.rigs}
        key_views, rows = {}, {}
        for ch, cam in d.rigs.items():
            chain = []
            for k, ts_sample in enumerate(sample_ts):
                ts_key = ts_sample + cam_offset[ch]
                for ts, is_key in self._frames(rng, ts_key, k, sample_ts):
                    t = (ts - base) / 1e6
                    ex, ey, eyaw = scene.ego_at(t)
                    pose = tables.add(
                        "ego_pose",
                        timestamp=ts,
                        rotation=list(Quaternion(axis=[0, 0, 1], angle=eyaw).elements),
                        translation=[float(ex), float(ey), 0.0],
                    )
                    rgb, ids, faces, heads = draw_world(
                        scene, d.ground, cam, t, np.random.default_rng([d.seed, self.si, ts])
                    )
                    folder = "samples" if is_key else "sweeps"
                    filename = f"{folder}/{ch}/{log_rec['logfile']}__{ch}__{ts}.jpg"
                    self._write(filename, jpeg(rgb))
                    self.n_images += 1
                    # A sweep belongs to the FOLLOWING key frame, as in nuScenes.
                    owner = samples[k] if is_key or ts < ts_key else samples[k + 1]
                    sd = tables.add(
                        "sample_data",
                        sample_token=owner["token"],
                        ego_pose_token=pose["token"],
                        calibrated_sensor_token=cs[ch]["token"],
                        timestamp=ts,
                        fileformat="jpg",
                        is_key_frame=is_key,
                        height=d.height,
                        width=d.width,
                        filename=filename,
                        prev="",
                        next="",
                    )
                    chain.append(sd)
                    rows[sd["token"]] = (
                        frame_rows(scene, t, ids, faces, pose, cs[ch], cam),
                        head_rows(scene, t, ids, heads, HEAD_ID_BASE),
                    )
                    if is_key:
                        key_views[(k, ch)] = (world_to_camera(pose, cs[ch]), ids)
            link(chain)
        return key_views, rows

    def _annotate(
        self, rng, name, scene, base, cs, sample_ts, samples, key_views
    ) -> dict[int, tuple[str, int, int]]:
        """Contiguous annotation tracks while agents are within range of the ego, and the
        scene's prediction targets → per annotated track index (instance token, first, last
        annotated sample)."""
        tables, d = self.tables, self.d
        instances = {}
        times = [(ts - base) / 1e6 for ts in sample_ts]
        egos = [scene.ego_at(t) for t in times]
        for ti, tr in enumerate(scene.tracks):
            states = [tr.at(t) if tr.alive(t) else None for t in times]
            near = [
                s is not None and np.hypot(s["x"] - e[0], s["y"] - e[1]) < ANNOTATION_RANGE
                for s, e in zip(states, egos)
            ]
            if not any(near):
                continue
            first = near.index(True)
            last = first
            while last + 1 < len(near) and near[last + 1]:  # one contiguous track
                last += 1
            inst = tables.add(
                "instance",
                category_token=d.cat_tok[tr.category],
                nbr_annotations=last - first + 1,
                first_annotation_token="",
                last_annotation_token="",
            )
            instances[ti] = (inst["token"], first, last)
            anns = [
                self._annotation(rng, tr, ti, k, states[k], egos[k], inst, samples, key_views)
                for k in range(first, last + 1)
            ]
            link(anns)
            inst["first_annotation_token"], inst["last_annotation_token"] = (
                anns[0]["token"],
                anns[-1]["token"],
            )
            if tr.category.startswith("vehicle") and not tr.parked:
                self._targets(name, inst, anns, states, egos, samples, first, last)
        return instances

    def _annotation(self, rng, tr, ti, k, st, ego, inst, samples, key_views) -> dict:
        """The sample_annotation of track ti at key frame k (state st, the ego's pose ego)."""
        d, box = self.d, agent_box(st, tr.size)
        frac = self._visible_fraction(st, tr.size, ti, k, key_views)
        vis = "1" if frac < 0.4 else "2" if frac < 0.6 else "3" if frac < 0.8 else "4"
        dist = float(np.hypot(st["x"] - ego[0], st["y"] - ego[1]))
        return self.tables.add(
            "sample_annotation",
            sample_token=samples[k]["token"],
            instance_token=inst["token"],
            visibility_token=vis,
            attribute_tokens=[d.attr_tok[attribute(tr, st)]],
            translation=[float(v) for v in box.center],
            size=list(tr.size),
            rotation=[float(v) for v in box.orientation.elements],
            prev="",
            next="",
            num_lidar_pts=int(4000 * max(frac, 0.05) / (1 + dist / 4) ** 2),
            num_radar_pts=(int(rng.integers(0, 4)) if tr.category.startswith("vehicle") else 0),
        )

    def _targets(self, name, inst, anns, states, egos, samples, first: int, last: int) -> None:
        """Targets: a full 6 s future, and seen well at the target sample (within TARGET_RANGE
        of the ego, visibility >= 2), every target_stride-th sample."""
        for k in range(first, last + 1):
            near = np.hypot(states[k]["x"] - egos[k][0], states[k]["y"] - egos[k][1])
            seen = anns[k - first]["visibility_token"] >= "2"
            if (
                k + FUTURE_SAMPLES <= last
                and k % self.d.target_stride == 0
                and near < TARGET_RANGE
                and seen
            ):
                self.prediction.setdefault(name, []).append(
                    f"{inst['token']}_{samples[k]['token']}"
                )

    def _visible_fraction(self, state: dict, size, ti: int, k: int, key_views) -> float:
        """Largest unoccluded share of the agent's projected box over the key frame's cameras."""
        frac = 0.0
        for ch, cam in self.d.rigs.items():
            frame, ids = key_views[(k, ch)]
            area = hull_area(state, size, frame, cam.K, self.d.width, self.d.height)
            if area > 0:
                frac = max(frac, visibility_fraction(ids, ti + 1, area))
        return frac

    def _side_file(
        self, scene, base: int, sample_ts: list[int], instances: dict, rows: dict
    ) -> None:
        """The scene's rows of the side file: annotated agents only, times in µs."""
        token_of = {ti: tok for ti, (tok, _, _) in instances.items()}
        for sd_token, (agent_rows, heads) in rows.items():
            kept = [[token_of[r[0]], *r[1:]] for r in agent_rows if r[0] in token_of]
            if kept:
                self.side["frames"][sd_token] = kept
            if heads:
                self.side["heads"][sd_token] = heads
        tokens = {scene.tracks[ti].key: tok for ti, tok in token_of.items()}
        for ti, (token, first, last) in instances.items():
            span = (
                (sample_ts[first] - base) / 1e6 - HISTORY_S,
                (sample_ts[last] - base) / 1e6 + 0.5,
            )
            entry = agent_entry(scene, scene.tracks[ti], self.d.city.net, tokens, base, span)
            self.side["agents"][token] = {**entry, "track": ti}


__all__ = ["FUTURE_SAMPLES", "SceneWriter", "scene_base"]
