"""The neighbours input: the nearest other agents at the target sample, in the target's frame,
with masks, and nothing read after the target time."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from nuscenes.eval.prediction.splits import get_prediction_challenge_split
from nuscenes.nuscenes import NuScenes
from nuscenes.prediction import PredictHelper

from xmem_traj.inputs.neighbours import neighbour_arrays
from xmem_traj.traj.head import TrajectoryHead

RADIUS, M, P = 30.0, 4, 4


def _targets(nusc: NuScenes, root) -> list[SimpleNamespace]:
    """Challenge targets of mini_train as records (tokens and the box at the target)."""
    out = []
    for token in get_prediction_challenge_split("mini_train", dataroot=str(root))[:40]:
        inst, sample = token.split("_")
        ann = _helper(nusc).get_sample_annotation(inst, sample)
        out.append(
            SimpleNamespace(
                instance_token=inst,
                sample_token=sample,
                translation=ann["translation"],
                rotation=ann["rotation"],
            )
        )
    return out


_HELPERS: dict[int, PredictHelper] = {}


def _helper(nusc: NuScenes) -> PredictHelper:
    return _HELPERS.setdefault(id(nusc), PredictHelper(nusc))


def _arrays(nusc, records):
    return neighbour_arrays(_helper(nusc), records, max_neighbours=M, radius=RADIUS, past_steps=P)


def _local(xy, translation, rotation) -> np.ndarray:
    """Global xy → the target's frame (origin at its box, heading +y), by its yaw."""
    w, x, y, z = rotation
    yaw = np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    d = np.asarray(xy) - np.asarray(translation[:2])
    a = np.pi / 2 - yaw
    return np.array([np.cos(a) * d[0] - np.sin(a) * d[1], np.sin(a) * d[0] + np.cos(a) * d[1]])


def test_neighbours_are_the_nearest_others_in_the_targets_frame(nusc, synth_root):
    records = _targets(nusc, synth_root)
    arrays = _arrays(nusc, records)
    tracks, valid = arrays["neighbours"], arrays["neighbours_valid"]
    assert tracks.shape == (len(records), M, P + 1, 2) and valid.shape == tracks.shape[:-1]
    seen = 0
    for i, rec in enumerate(records):
        others = [
            a
            for a in _helper(nusc).get_annotations_for_sample(rec.sample_token)
            if a["instance_token"] != rec.instance_token
        ]
        local = sorted(
            (np.linalg.norm(_local(a["translation"][:2], rec.translation, rec.rotation)), a)
            for a in others
            if np.linalg.norm(np.subtract(a["translation"][:2], rec.translation[:2])) <= RADIUS
        )[:M]
        # the current step of each present neighbour: the nearest others, nearest first
        assert valid[i, :, -1].sum() == len(local)
        for n, (dist, ann) in enumerate(local):
            want = _local(ann["translation"][:2], rec.translation, rec.rotation)
            np.testing.assert_allclose(tracks[i, n, -1], want, atol=1e-3)
            assert np.linalg.norm(tracks[i, n, -1]) == pytest.approx(dist, abs=1e-3)
            seen += 1
        # absent neighbours and missing past steps: invalid and zero
        assert not valid[i, len(local) :].any()
        assert (tracks[i][~valid[i]] == 0).all()
    assert seen > len(records)  # the scenes have traffic: the test compared something
    assert valid[:, :, :-1].any()  # and some neighbours have a past


def _shift_annotations(nusc: NuScenes, samples: set[str]) -> None:
    """Move by 1 km every annotation of `samples`."""
    for ann in nusc.sample_annotation:
        if ann["sample_token"] in samples:
            ann["translation"] = [ann["translation"][0] + 1000.0, *ann["translation"][1:]]


def test_nothing_after_the_target_time_is_read(synth_root):
    nusc = NuScenes("v1.0-mini", str(synth_root), verbose=False)
    records = _targets(nusc, synth_root)
    middle = nusc.get("sample", records[len(records) // 2].sample_token)
    at_t0 = [r for r in records if r.sample_token == middle["token"]]
    before = _arrays(nusc, at_t0)
    later = {s["token"] for s in nusc.sample if s["timestamp"] > middle["timestamp"]}
    _shift_annotations(nusc, later)  # the future moves away: nothing changes
    after = _arrays(nusc, at_t0)
    for slot in before:
        np.testing.assert_array_equal(before[slot], after[slot])
    assert middle["prev"], "the target needs a past sample for this test"
    _shift_annotations(nusc, {middle["prev"]})  # the sample before moves: it shows
    moved = _arrays(nusc, at_t0)
    assert not np.array_equal(moved["neighbours"], before["neighbours"])


def test_the_head_reads_the_neighbours_and_ignores_padding():
    torch.manual_seed(0)
    head = TrajectoryHead(
        0,
        kind="mlp",
        hidden=16,
        num_modes=2,
        past_steps=P,
        future_steps=12,
        dropout=0.0,
        neighbour_steps=P + 1,
    ).eval()
    past, past_valid = torch.zeros(2, P, 2), torch.ones(2, P, dtype=torch.bool)
    tracks = torch.randn(2, M, P + 1, 2) * 10
    valid = torch.zeros(2, M, P + 1, dtype=torch.bool)
    valid[:, 0] = True
    out = head(None, None, past, past_valid, None, tracks, valid)[0]
    garbage = tracks.clone()
    garbage[:, 1:] = 1e6  # absent neighbours: whatever their values
    assert torch.equal(out, head(None, None, past, past_valid, None, garbage, valid)[0])
    tracks[:, 0] += 5.0  # a present neighbour moves: the prediction changes
    assert not torch.allclose(out, head(None, None, past, past_valid, None, tracks, valid)[0])
