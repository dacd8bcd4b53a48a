"""The evaluation that can tell: the side file against the pixels,
splits as the devkit sees them, OffRoadRate and compute_metrics equal to ours."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from nuscenes.eval.prediction.data_classes import Prediction
from nuscenes.eval.prediction.metrics import OffRoadRate, RowMean
from nuscenes.eval.prediction.splits import get_prediction_challenge_split
from nuscenes.nuscenes import NuScenes
from nuscenes.prediction import PredictHelper
from nuscenes.utils.splits import create_splits_scenes
from PIL import Image

from xmem_traj.data.maps import DrivableMaps
from xmem_traj.data.world_file import SIDE_FILE, FrameCue
from xmem_traj.errors import RunError
from xmem_traj.eval.compare import COMPARED, RunScores, compare_runs
from xmem_traj.eval.offroad import off_road_rate
from xmem_traj.synth import generate
from xmem_traj.synth.draw import REAR_LAMPS
from xmem_traj.synth.render import box_corners, face_patch, make_camera, rotz
from xmem_traj.synth.scene import make_scene
from xmem_traj.synth.writer import dataset_city, scene_base

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def challenge_root(tmp_path_factory) -> Path:
    """A tiny v1.0-trainval world: 2 train, 1 train_val, 1 val scene."""
    return generate(
        tmp_path_factory.mktemp("world") / "trainval",
        scenes=(2, 1, 1),
        seed=11,
        width=320,
        height=180,
    )


def test_splits_are_the_devkits_and_disjoint(challenge_root):
    official = create_splits_scenes()
    nusc = NuScenes("v1.0-trainval", str(challenge_root), verbose=False)
    by_split = {}
    for split, names in (
        ("train", official["train"][200:]),
        ("train_val", official["train"][:200]),
        ("val", official["val"]),
    ):
        tokens = get_prediction_challenge_split(split, dataroot=str(challenge_root))
        assert tokens, split
        scenes = {
            nusc.get("scene", nusc.get("sample", t.split("_")[1])["scene_token"])["name"]
            for t in tokens
        }
        assert scenes <= set(names), split
        by_split[split] = scenes
    assert not (by_split["train"] & by_split["train_val"]) and not (
        by_split["val"] & by_split["train"]
    )


def test_side_file_matches_the_rendered_lamps(challenge_root):
    """In the written JPEGs, an agent's two rear lamps are red exactly when the side file says its
    brake lamps are lit (agents shown from behind, close and unoccluded; the lamps located
    from the agent's simulated pose at the frame's own time)."""
    nusc = NuScenes("v1.0-trainval", str(challenge_root), verbose=False)
    side = json.loads((challenge_root / "v1.0-trainval" / SIDE_FILE).read_text())
    checked = {True: 0, False: 0}
    for si, scene_rec in enumerate(nusc.scene):  # scene si of world seed 11, simulated again
        scene = make_scene(dataset_city(11), 11, si)
        base = scene_base(11, si)
        first = nusc.get("sample", scene_rec["first_sample_token"])
        for channel, sd_token in first["data"].items():
            sd = nusc.get("sample_data", sd_token)
            while sd is not None:
                t = (sd["timestamp"] - base) / 1e6
                cam = make_camera(channel, sd["width"], sd["height"])
                ex, ey, eyaw = scene.ego_at(t)
                image = None
                for row in side["frames"].get(sd["token"], []):
                    cue, agent = FrameCue.of(row), side["agents"][row[0]]
                    track = scene.tracks[agent["track"]]
                    state = track.at(t)
                    assert bool(state["brake"]) == cue.brake  # the side file is the simulated state
                    if (
                        not cue.back
                        or cue.visible < 0.95
                        or not agent["category"].startswith("vehicle.")
                        or agent["category"] == "vehicle.bicycle"
                    ):  # lamps: cars, trucks, buses
                        continue
                    w, l, h = track.size
                    corners = box_corners(state["x"], state["y"], h / 2, state["yaw"], w, l, h)
                    centres = [face_patch(corners, "back", *patch).mean(0) for patch in REAR_LAMPS]
                    pix = []
                    for p in centres:
                        c = (rotz(eyaw).T @ (p - [ex, ey, 0]) - cam.translation) @ cam.rotation
                        if c[2] > 1:
                            u, v, z = cam.K @ c
                            pix.append((u / z, v / z))
                    inside = len(pix) == 2 and all(
                        2 <= u < sd["width"] - 3 and 2 <= v < sd["height"] - 3 for u, v in pix
                    )
                    lamp_px = abs(pix[0][0] - pix[1][0]) if inside else 0
                    if not inside or lamp_px < 12:  # too small to read a 3×3 patch
                        continue
                    if image is None:
                        image = np.asarray(
                            Image.open(challenge_root / sd["filename"]).convert("RGB"), int
                        )
                    red = [
                        image[int(v) - 1 : int(v) + 2, int(u) - 1 : int(u) + 2]
                        .reshape(-1, 3)
                        .mean(0)
                        for u, v in pix
                    ]
                    # lit (255, 35, 25), off (100, 22, 22): plainly one or the other
                    lit = [r[0] > 160 and r[1] < 110 for r in red]
                    assert all(r[0] > 160 or r[0] < 140 for r in red), red
                    assert all(lit) == cue.brake and any(lit) == cue.brake, (sd["token"], row, red)
                    checked[cue.brake] += 1
                sd = nusc.get("sample_data", sd["next"]) if sd["next"] else None
    assert checked[True] >= 2 and checked[False] >= 5, checked


def test_offroad_rate_equals_the_devkits(challenge_root):
    nusc = NuScenes("v1.0-trainval", str(challenge_root), verbose=False)
    helper = PredictHelper(nusc)
    tokens = get_prediction_challenge_split("val", dataroot=str(challenge_root))[:12]
    rng = np.random.default_rng(0)
    preds, jsons = [], []
    for tok in tokens:
        inst, samp = tok.split("_")
        gt = helper.get_future_for_agent(inst, samp, 6, in_agent_frame=False)
        modes = gt[None] + rng.normal(0, 1, (5, 12, 2)).cumsum(1) * rng.choice([0.2, 3.0])
        preds.append(modes)
        jsons.append(Prediction(inst, samp, modes, np.full(5, 0.2)))
    devkit = OffRoadRate(helper, [RowMean()])
    expected = np.array([devkit(None, p)[0] for p in jsons])
    locations = [helper.get_map_name_from_sample_token(t.split("_")[1]) for t in tokens]
    ours = off_road_rate(
        np.stack(preds), locations, DrivableMaps.load(challenge_root, locations).masks
    )
    np.testing.assert_allclose(ours, expected)
    assert 0 < expected.mean() < 1  # both on-road and off-road modes were tried


@pytest.fixture(scope="module")
def history_run(challenge_root, tmp_path_factory) -> Path:
    """A tiny trained run (history-only and the intent oracle, one seed) on the challenge world."""
    tmp = tmp_path_factory.mktemp("history_run")
    common = [
        "--dataroot",
        str(challenge_root),
        "--cache-dir",
        str(tmp / "c"),
        "--run-dir",
        str(tmp / "runs"),
        "--name",
        "r",
        "--methods",
        "history_only,intent_oracle",
        "--seeds",
        "1",
        "--epochs",
        "2",
        "--hidden",
        "16",
        "--no-progress",
        "--modes",
        "3",
    ]
    out = subprocess.run(
        [str(BIN / "xmem-traj"), "train", *common], capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return tmp / "runs" / "r"


def test_compute_metrics_cli_equals_our_eval(challenge_root, history_run, tmp_path):
    """The devkit's compute_metrics, unmodified, on the synthetic dataroot and our predict JSON
    gives our eval's numbers, OffRoadRate included."""
    run = history_run
    preds = tmp_path / "preds.json"
    out = subprocess.run(
        [str(BIN / "xmem-traj"), "predict", "--run", str(run), "--out", str(preds)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "nuscenes.eval.prediction.compute_metrics",
            "--version",
            "v1.0-trainval",
            "--data_root",
            str(challenge_root),
            "--submission_path",
            str(preds),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    devkit = json.loads((tmp_path / "preds_metrics.json").read_text())
    ours = json.loads((run / "eval.json").read_text())["metrics"]["all"]["history-only (ablation)"]
    for i, k in enumerate((1, 5, 10)):
        assert devkit["MinADEK"]["RowMean"][i] == pytest.approx(ours[f"MinADEK_{k}"][0], abs=1e-4)
        assert devkit["MinFDEK"]["RowMean"][i] == pytest.approx(ours[f"MinFDEK_{k}"][0], abs=1e-4)
        assert devkit["MissRateTopK_2"]["RowMean"][i] == pytest.approx(
            ours[f"MissRateTopK_2_{k}"][0], abs=1e-6
        )
    assert devkit["OffRoadRate"]["RowMean"][0] == pytest.approx(ours["OffRoadRate"][0], abs=1e-6)


def _scores(label: str, targets: list[tuple[str, str]], fde: np.ndarray) -> RunScores:
    n = len(targets)
    return RunScores(
        label=label,
        split="val",
        targets=targets,
        seeds=1,
        scenes=[f"scene{i % 7}" for i in range(n)],
        per_target={k: (fde if k == "MinFDEK_1" else np.ones(n))[None] for k in COMPARED},
        subsets={
            "all": (np.ones(n, bool), "all targets"),
            "with_past": (np.arange(n) % 2 == 0, "targets with a past"),
        },
    )


def test_compare_runs_pairs_common_targets():
    targets = [(f"agent{i // 3}", f"sample{i}") for i in range(30)]
    fde = np.random.default_rng(0).uniform(1, 10, 30)
    # B has the targets in another order and two more; A is 20 % lower on every target.
    b = _scores("b", targets[::-1] + [("x", "y"), ("x", "z")], np.r_[fde[::-1], 99.0, 99.0])
    out = compare_runs(_scores("a", targets, 0.8 * fde), b)
    assert (out["targets"], out["only_a"], out["only_b"]) == (30, 0, 2)
    gain = out["subsets"]["with_past"]["MinFDEK_1"]
    assert gain["b"] == pytest.approx(fde[::2].mean())
    assert gain["gain"] == pytest.approx([0.2, 0.2, 0.2])
    assert out["subsets"]["all"]["targets"] == 30 and out["subsets"]["all"]["agents"] == 10
    with pytest.raises(RunError, match="share no val target"):
        compare_runs(_scores("a", targets, fde), _scores("c", [("q", "r")], np.ones(1)))


def test_compare_cli_on_one_run_against_itself(history_run, tmp_path):
    """`xmem-traj compare` wires the two runs through the same scoring as eval: a run against
    itself has eval's means on both sides and a gain of exactly 0."""
    out = subprocess.run(
        [
            str(BIN / "xmem-traj"),
            "compare",
            "--run",
            str(history_run),
            "--against",
            str(history_run),
            "--json",
            str(tmp_path / "c.json"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads((tmp_path / "c.json").read_text())
    ours = json.loads((history_run / "eval.json").read_text())["metrics"]["all"][
        "history-only (ablation)"
    ]
    block = result["subsets"]["all"]
    assert block["MinFDEK_1"]["a"] == pytest.approx(ours["MinFDEK_1"][0])
    gain, low, high = block["MinFDEK_1"]["gain"]
    assert gain == 0.0 and np.isnan(low) and np.isnan(high)  # one val scene: no interval
    assert "gain of A over B" in out.stdout


def test_intent_oracle_reads_the_plans_of_the_side_file(challenge_root):
    from xmem_traj.data.agent_index import index_targets
    from xmem_traj.data.world_file import KINDS as INTENT_KINDS
    from xmem_traj.data.world_file import WorldFile

    cues = WorldFile.load(challenge_root, "v1.0-trainval")
    records = index_targets(
        challenge_root, "v1.0-trainval", "train", frames="keyframes", history_s=2.0, future_s=6.0
    ).records
    checked = 0
    for rec in records:
        plan = [
            m
            for m in cues.agents[rec.instance_token]["manoeuvres"]
            if m["t_end"] > rec.sample_timestamp - 500_000
            and m["t_motion"] <= rec.sample_timestamp + 8_000_000
        ]
        row = cues.intent_features(rec)
        if not plan:
            assert not row.any()
            continue
        first, per = plan[0], len(INTENT_KINDS) + 4
        assert row[INTENT_KINDS.index(first["kind"])] == 1 and row[: len(INTENT_KINDS)].sum() == 1
        assert row[per - 2] * 6e6 == pytest.approx(first["t_motion"] - rec.sample_timestamp, abs=1)
        checked += 1
    assert checked >= 5
