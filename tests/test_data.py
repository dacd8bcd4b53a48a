"""The synthetic nuScenes through the real devkit, and the agent loader checked against it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from nuscenes.eval.prediction.splits import get_prediction_challenge_split
from nuscenes.prediction import PredictHelper
from nuscenes.scripts.export_2d_annotations_as_json import post_process_coords
from nuscenes.utils.geometry_utils import view_points
from pyquaternion import Quaternion
from torch.utils.data import DataLoader

from conftest import SIZE
from xmem_traj.data.agent_dataset import NuScenesAgentDataset, collate_agents
from xmem_traj.data.agent_index import AgentIndexer
from xmem_traj.data.videos import group_video, group_windows
from xmem_traj.errors import DatasetError
from xmem_traj.synth import generate


@pytest.fixture(scope="session")
def synth_sweeps(tmp_path_factory) -> Path:
    return generate(
        tmp_path_factory.mktemp("nusc") / "sweeps",
        scenes=2,
        seed=6,
        sweeps=True,
        cameras=("CAM_FRONT", "CAM_BACK"),
        **SIZE,
    )


@pytest.fixture(scope="session")
def train_set(synth_root, nusc):
    return NuScenesAgentDataset.from_nuscenes(
        synth_root, "v1.0-mini", "mini_train", nusc=nusc, image_size=None
    )


def test_devkit_loads_all_tables(nusc):
    assert len(nusc.scene) == 3 and len(nusc.sample) == 120
    assert {s["channel"] for s in nusc.sensor} == {
        "CAM_FRONT",
        "CAM_FRONT_RIGHT",
        "CAM_BACK_RIGHT",
        "CAM_BACK",
        "CAM_BACK_LEFT",
        "CAM_FRONT_LEFT",
    }
    for sd in nusc.sample_data[:50]:
        assert Path(nusc.get_sample_data_path(sd["token"])).exists()
    ann = nusc.sample_annotation[0]
    assert len(ann["size"]) == 3 and len(ann["rotation"]) == 4 and ann["visibility_token"] in "1234"
    helper = PredictHelper(nusc)
    assert helper.get_map_name_from_sample_token(nusc.sample[0]["token"]) == "boston-seaport"


def test_future_and_past_equal_predict_helper(train_set, nusc):
    helper = PredictHelper(nusc)
    for i in range(0, len(train_set), 7):
        item = train_set[i]
        m = item["meta"]
        fut = helper.get_future_for_agent(m["instance_token"], m["sample_token"], 6, True)
        np.testing.assert_allclose(item["traj"].numpy(), fut, atol=1e-4)
        past = helper.get_past_for_agent(m["instance_token"], m["sample_token"], 2, True)
        past = np.asarray(past).reshape(-1, 2)[::-1]
        valid = m["past_valid"]
        np.testing.assert_allclose(m["past"][valid], past, atol=1e-4)
        ann = helper.get_sample_annotation(m["instance_token"], m["sample_token"])
        np.testing.assert_allclose(item["last_pos"].numpy(), ann["translation"][:2], atol=1e-3)


def test_init_masks_follow_the_devkit_recipe(train_set, nusc):
    """Our mask's extent equals the 2-D box of the devkit's export script at the init frame."""
    helper = PredictHelper(nusc)
    checked = 0
    for i in range(0, len(train_set), 5):
        item = train_set[i]
        m = item["meta"]
        sd = nusc.get("sample_data", m["frame_tokens"][m["init_frame"]])
        ann = helper.get_sample_annotation(m["instance_token"], sd["sample_token"])
        box = nusc.get_box(ann["token"])
        pose = nusc.get("ego_pose", sd["ego_pose_token"])
        cs = nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
        box.translate(-np.array(pose["translation"]))
        box.rotate(Quaternion(pose["rotation"]).inverse)
        box.translate(-np.array(cs["translation"]))
        box.rotate(Quaternion(cs["rotation"]).inverse)
        corners = box.corners()
        corners = corners[:, corners[2] > 0]
        uv = view_points(corners, np.array(cs["camera_intrinsic"]), True).T[:, :2].tolist()
        x0, y0, x1, y1 = post_process_coords(uv, (sd["width"], sd["height"]))
        mask = item["init_masks"][0].numpy()
        assert mask.shape == (sd["height"], sd["width"])
        ys, xs = np.nonzero(mask)
        assert len(xs) > 0
        assert abs(xs.min() - x0) <= 1.5 and abs(xs.max() + 1 - x1) <= 1.5
        assert abs(ys.min() - y0) <= 1.5 and abs(ys.max() + 1 - y1) <= 1.5
        checked += 1
    assert checked >= 5


def test_frames_are_the_camera_files_in_time_order(train_set, nusc):
    for i in range(0, len(train_set), 9):
        item = train_set[i]
        m = item["meta"]
        tokens = [t for t in m["frame_tokens"] if t]
        assert tokens[-1] == nusc.get("sample", m["sample_token"])["data"][m["camera"]]
        sample = nusc.get("sample", m["sample_token"])
        for tok in reversed(tokens):  # one key frame per previous sample
            assert sample["data"][m["camera"]] == tok
            sample = nusc.get("sample", sample["prev"]) if sample["prev"] else None
        ts = [t for t in m["frame_timestamps"] if t]
        assert ts == sorted(ts) and len(set(ts)) == len(ts)
        frames = item["frames"].numpy()
        assert frames.dtype == np.float32 and 0 <= frames.min() and frames.max() <= 1
        for t, tok in enumerate(m["frame_tokens"]):
            if not tok:
                assert not m["frame_valid"][t] and frames[t].max() == 0
            else:
                from PIL import Image

                ref = (
                    np.asarray(
                        Image.open(nusc.get_sample_data_path(tok)).convert("RGB"), np.float32
                    ).transpose(2, 0, 1)
                    / 255
                )
                np.testing.assert_allclose(frames[t], ref, atol=1e-6)


def test_sweeps_window_follows_the_camera_chain(synth_sweeps):
    from nuscenes.nuscenes import NuScenes

    nusc = NuScenes("v1.0-mini", str(synth_sweeps), verbose=False)
    ds = NuScenesAgentDataset.from_nuscenes(
        synth_sweeps, "v1.0-mini", "mini_train", frames="sweeps", image_size=(64, 112), nusc=nusc
    )
    assert ds.window_len == 31  # 2 s at 12 Hz with room for jitter
    full = max(range(len(ds)), key=lambda i: sum(bool(t) for t in ds.records[i].frame_tokens))
    item = ds[full]
    tokens = [t for t in item["meta"]["frame_tokens"] if t]
    assert len(tokens) >= 20
    for a, b in zip(tokens, tokens[1:]):
        assert nusc.get("sample_data", b)["prev"] == a
    span = (
        nusc.get("sample_data", tokens[-1])["timestamp"]
        - nusc.get("sample_data", tokens[0])["timestamp"]
    )
    assert span <= 2.04e6
    assert item["frames"].shape == (31, 3, 64, 112)
    # The per-agent sweep box equals the devkit's get_boxes interpolation.
    indexer = AgentIndexer(nusc, frames="sweeps")
    inst = item["meta"]["instance_token"]
    compared = 0
    for tok in tokens:
        sd = nusc.get("sample_data", tok)
        devkit = {
            nusc.get("sample_annotation", b.token)["instance_token"]: b for b in nusc.get_boxes(tok)
        }
        ours = indexer.agent_box_in(inst, sd)
        assert (ours is None) == (inst not in devkit)
        if ours is not None:
            np.testing.assert_allclose(ours.center, devkit[inst].center, atol=1e-9)
            np.testing.assert_allclose(
                ours.orientation.elements, devkit[inst].orientation.elements, atol=1e-9
            )
            compared += not sd["is_key_frame"]
    assert compared > 10
    every = NuScenesAgentDataset.from_nuscenes(
        synth_sweeps,
        "v1.0-mini",
        "mini_train",
        challenge=False,
        require_full_future=False,
        nusc=nusc,
        image_size=(72, 128),
    )
    assert (
        every.targets.skipped["seen by no camera"] > 0
    )  # two cameras only: side agents are counted


def test_sweeps_window_starts_at_a_past_key_frame(synth_sweeps):
    """All camera frames from the first past key frame to the target's, never before the scene's
    first key frame (the cameras run earlier); the initial mask on a frame with its own or an
    interpolated annotation (not the following key frame's box)."""
    from nuscenes.nuscenes import NuScenes

    nusc = NuScenes("v1.0-mini", str(synth_sweeps), verbose=False)
    ds = NuScenesAgentDataset.from_nuscenes(
        synth_sweeps,
        "v1.0-mini",
        "mini_train",
        frames="sweeps",
        image_size=(64, 112),
        nusc=nusc,
        challenge=False,
        require_full_future=False,
    )
    helper = PredictHelper(nusc)
    first_keys = {
        s["token"]: nusc.get("sample", s["first_sample_token"])["timestamp"] for s in nusc.scene
    }
    pre_roll = [
        sd
        for sd in nusc.sample_data
        if not sd["is_key_frame"] and not nusc.get("sample", sd["sample_token"])["prev"]
    ]
    assert pre_roll, "the generator writes sweeps before each scene's first key frame"
    entering = 0
    for rec in ds.records:
        tokens = [t for t in rec.frame_tokens if t]
        sds = [nusc.get("sample_data", t) for t in tokens]
        sample = nusc.get("sample", rec.sample_token)
        assert sds[0]["is_key_frame"] and sds[-1]["token"] == sample["data"][rec.camera]
        back = sample
        for _ in range(4):
            back = nusc.get("sample", back["prev"]) if back["prev"] else back
        assert sds[0]["token"] == back["data"][rec.camera]
        assert sds[0]["timestamp"] >= first_keys[sample["scene_token"]] - 50_000
        init_sd = nusc.get("sample_data", rec.frame_tokens[rec.init_frame])
        own = helper.inst_sample_to_ann.get((init_sd["sample_token"], rec.instance_token))
        owner = nusc.get("sample", init_sd["sample_token"])
        prev = (
            helper.inst_sample_to_ann.get((owner["prev"], rec.instance_token))
            if owner["prev"]
            else None
        )
        assert own and (init_sd["is_key_frame"] or prev), "init mask on a guessed box"
        entering += rec.init_frame > rec.frame_tokens.index(tokens[0])
    assert entering > 0  # some agents enter mid-window


def test_challenge_split_round_trips(synth_root, nusc):
    ds = NuScenesAgentDataset.from_nuscenes(
        synth_root, "v1.0-mini", "mini_train", nusc=nusc, image_size=(72, 128)
    )
    tokens = get_prediction_challenge_split("mini_train", dataroot=str(synth_root))
    got = {f"{r.instance_token}_{r.sample_token}" for r in ds.records}
    assert got <= set(tokens)
    assert len(tokens) - len(got) == sum(ds.targets.skipped.values())
    assert all(r.category.startswith("vehicle") for r in ds.records)
    every = NuScenesAgentDataset.from_nuscenes(
        synth_root,
        "v1.0-mini",
        "mini_train",
        nusc=nusc,
        challenge=False,
        require_full_future=False,
        categories=("human",),
        image_size=(72, 128),
    )
    assert all(r.category.startswith("human") for r in every.records)


def test_groups_share_windows(train_set):
    groups = group_windows(train_set.records)
    assert sum(len(g.items) for g in groups) == len(train_set)
    multi = [g for g in groups if len(g.items) > 1]
    assert multi
    g = multi[0]
    video = group_video(train_set.records, g, train_set.image_size)
    assert video["init_masks"].shape[0] == len(g.items)
    assert list(video["init_frames"]) == sorted(video["init_frames"].tolist())
    for i in g.items:
        assert train_set.records[i].frame_tokens == list(g.frame_tokens)


def test_dataloader_with_workers(synth_root):
    ds = NuScenesAgentDataset.from_nuscenes(
        synth_root, "v1.0-mini", "mini_val", image_size=(64, 112)
    )
    loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate_agents)
    batch = next(iter(loader))
    assert batch["frames"].shape == (4, 5, 3, 64, 112)
    assert batch["init_masks"].shape == (4, 1, 64, 112)
    assert batch["meta"]["past"].shape == (4, 4, 2) and len(batch["meta"]["camera"]) == 4


def test_clear_errors(synth_root, tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        NuScenesAgentDataset.from_nuscenes(
            tmp_path / "nowhere", "v1.0-mini", "mini_train", image_size=(72, 128)
        )
    with pytest.raises(DatasetError, match="v1.0-trainval"):
        NuScenesAgentDataset.from_nuscenes(
            synth_root, "v1.0-trainval", "train", image_size=(72, 128)
        )
    broken = tmp_path / "broken"
    shutil.copytree(synth_root, broken)
    (broken / "v1.0-mini" / "ego_pose.json").unlink()
    with pytest.raises(DatasetError, match="ego_pose.json"):
        NuScenesAgentDataset.from_nuscenes(broken, "v1.0-mini", "mini_train", image_size=(72, 128))
    shutil.copy(synth_root / "v1.0-mini" / "ego_pose.json", broken / "v1.0-mini" / "ego_pose.json")
    (broken / "maps" / "prediction" / "prediction_scenes.json").unlink()
    with pytest.raises(DatasetError, match="map expansion"):
        NuScenesAgentDataset.from_nuscenes(
            broken, "v1.0-mini", "mini_train", challenge=True, image_size=(72, 128)
        )
    ds = NuScenesAgentDataset.from_nuscenes(
        broken, "v1.0-mini", "mini_train", challenge=False, image_size=(72, 128)
    )
    path = Path(ds.records[0].frame_paths[-1])
    path.write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match=re.escape(path.name)):
        ds[0]
    path.unlink()
    with pytest.raises(DatasetError, match="missing image .*" + re.escape(path.name)):
        ds[0]


def test_agent_view_crops_follow_the_agent(train_set):
    """The agent-centric view: one video per target, square crops around the agent's hull (its
    mask well inside), shared by the targets of one agent."""
    from xmem_traj.data.videos import FrameSource, crop_boxes, videos

    groups = videos(train_set.records, "agent")
    assert len(groups) == len(train_set) and all(len(g.items) == 1 for g in groups)
    source = FrameSource(train_set.records, None, 96)
    ids = {}
    for n, g in enumerate(groups):
        rec = train_set.records[g.items[0]]
        for fid in source.ids(g):
            if fid:
                assert fid.endswith("#" + rec.instance_token)
                ids.setdefault(fid, set()).add(g.items[0])
        if n % 4:
            continue
        video = group_video(train_set.records, g, None, crop_size=96)
        assert video["frames"].shape == (len(rec.frame_tokens), 3, 96, 96)
        init = video["init_masks"][0].numpy()
        ys, xs = np.nonzero(init)
        assert len(xs) and xs.min() > 0 and xs.max() < 95 and ys.min() > 0 and ys.max() < 95
        box = crop_boxes(rec)[rec.init_frame]
        assert abs((box[2] - box[0]) - (box[3] - box[1])) < 1e-6  # square
    assert any(len(items) > 1 for items in ids.values())  # one agent's targets share crops
