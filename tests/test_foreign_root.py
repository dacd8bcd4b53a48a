"""`xmem-traj train --methods xmem,history_only,mtp,covernet` on a nuScenes-format dataroot that
is not our generator's: the synthetic copy turned into what a real copy looks like to the
devkit — no side file (so no causes, no cue labels, no oracles), a lidar beside the cameras,
tables in no particular order, and an expansion-pack split that lists scenes this version does
not hold — trained a few steps, its predictions scored by the devkit's own metric classes."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from nuscenes.eval.prediction.compute_metrics import compute_metrics
from nuscenes.eval.prediction.config import PredictionConfig
from nuscenes.eval.prediction.metrics import MinADEK, MinFDEK, MissRateTopK, RowMean
from nuscenes.nuscenes import NuScenes
from nuscenes.prediction import PredictHelper

from conftest import tiny_config
from xmem_traj.data.world_file import side_file_path
from xmem_traj.eval.scoring import load_predictor, prediction_json, val_tensors
from xmem_traj.methods import METHODS
from xmem_traj.runs import RunLayout
from xmem_traj.train import run_training
from xmem_traj.traj.prepare import has_world_file, prepare

VERSION = "v1.0-mini"
METHODS_RUN = ("xmem", "history_only", "mtp", "covernet")


def _read(root: Path, table: str) -> list[dict]:
    return json.loads((root / VERSION / f"{table}.json").read_text())


def _write(root: Path, table: str, records: list[dict]) -> None:
    (root / VERSION / f"{table}.json").write_text(json.dumps(records))


def _add_lidar(root: Path) -> None:
    """A LIDAR_TOP key frame per sample, with its own ego pose, chained per scene (a real copy
    has one; its calibration has no intrinsic and its sample_data is 0×0)."""
    sensor = {"token": "f" * 32, "channel": "LIDAR_TOP", "modality": "lidar"}
    calib = {
        "token": "e" * 32,
        "sensor_token": sensor["token"],
        "translation": [0.9, 0.0, 1.8],
        "rotation": [0.707, 0.0, 0.0, -0.707],
        "camera_intrinsic": [],
    }
    _write(root, "sensor", _read(root, "sensor") + [sensor])
    _write(root, "calibrated_sensor", _read(root, "calibrated_sensor") + [calib])
    poses, data = _read(root, "ego_pose"), _read(root, "sample_data")
    pose_of = {p["token"]: p for p in poses}
    key_pose = {d["sample_token"]: pose_of[d["ego_pose_token"]] for d in data if d["is_key_frame"]}
    by_scene: dict[str, list[dict]] = {}
    for s in _read(root, "sample"):
        by_scene.setdefault(s["scene_token"], []).append(s)
    for samples in by_scene.values():
        samples.sort(key=lambda s: s["timestamp"])
        tokens = [f"{i:08x}{s['token'][8:]}" for i, s in enumerate(samples)]
        for i, s in enumerate(samples):
            pose = dict(key_pose[s["token"]], token="a" + tokens[i][1:], timestamp=s["timestamp"])
            poses.append(pose)
            data.append(
                {
                    "token": tokens[i],
                    "sample_token": s["token"],
                    "ego_pose_token": pose["token"],
                    "calibrated_sensor_token": calib["token"],
                    "timestamp": s["timestamp"],
                    "fileformat": "pcd",
                    "is_key_frame": True,
                    "height": 0,
                    "width": 0,
                    "filename": f"samples/LIDAR_TOP/{s['timestamp']}.pcd.bin",
                    "prev": tokens[i - 1] if i else "",
                    "next": tokens[i + 1] if i + 1 < len(tokens) else "",
                }
            )
    _write(root, "ego_pose", poses)
    _write(root, "sample_data", data)


def make_foreign(synth_root: Path, root: Path) -> Path:
    """A copy of synth_root with a real copy's quirks (see the module's docstring)."""
    shutil.copytree(synth_root, root)
    side_file_path(root, VERSION).unlink()
    _add_lidar(root)
    shuffle = random.Random(0)
    for table in ("sample", "sample_data", "sample_annotation", "instance", "ego_pose"):
        records = _read(root, table)
        shuffle.shuffle(records)
        _write(root, table, records)
    split = root / "maps" / "prediction" / "prediction_scenes.json"
    scenes = json.loads(split.read_text())
    scenes["scene-0757"] = ["0" * 32 + "_" + "1" * 32]  # a mini_train scene this copy lacks
    split.write_text(json.dumps(scenes))
    return root


@pytest.fixture(scope="module")
def foreign_root(synth_root, tmp_path_factory) -> Path:
    return make_foreign(synth_root, tmp_path_factory.mktemp("foreign") / "nuscenes")


def test_the_foreign_copy_loads_in_the_devkit_and_has_no_side_file(foreign_root):
    nusc = NuScenes(VERSION, str(foreign_root), verbose=False)
    assert all("LIDAR_TOP" in s["data"] for s in nusc.sample)
    assert not side_file_path(foreign_root, VERSION).exists()


def test_train_with_the_peers_on_a_foreign_copy(foreign_root, tmp_path):
    cfg = tiny_config(
        foreign_root,
        tmp_path,
        methods=",".join(METHODS_RUN),
        raster_resolution=1.0,  # 50×50 pixels
        peer_hidden=32,
        lattice_eps=6.0,
        modes=3,
        batch_size=8,
        max_steps=2,
        epochs=1,
    )
    assert not has_world_file(cfg)
    run = run_training(cfg)
    rows = json.loads((run / "eval.json").read_text())["metrics"]["all"]
    data = prepare(cfg, roles=("val",))
    nusc = data.context.nusc
    assert {r.sample_token for r in data.val.records} <= {s["token"] for s in nusc.sample}
    helper = PredictHelper(nusc)
    metrics = [
        MinADEK([1, 5], [RowMean()]),
        MinFDEK([1, 5], [RowMean()]),
        MissRateTopK([1, 5], [RowMean()], tolerance=2),
    ]
    for method in METHODS_RUN:
        assert np.isfinite(rows[METHODS[method].label]["MinFDEK_1"][0]), method
        ckpt = RunLayout(run).checkpoint(method, 0)
        assert torch.load(ckpt, weights_only=True)["global_step"] == 2, method
        model = load_predictor(ckpt)  # rebuilt from the checkpoint alone (CoverNet: its lattice)
        preds = prediction_json(model, val_tensors(data, method), data.val.records)
        assert len(preds) == len(data.val) > 0
        scores = compute_metrics(preds, helper, PredictionConfig(metrics, seconds=6))
        ade = scores["MinADEK"]["RowMean"]
        assert all(np.isfinite(ade)) and ade[0] >= ade[1] > 0, method
