"""The batched engine against per-video InferenceCore runs, memory caps, and input errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from conftest import normalise, synthetic_video
from xmem_traj.xmem import (
    BatchedInferenceCore,
    CheckpointError,
    InferenceCore,
    load_xmem,
    random_state_dict,
)

H, W = 64, 96  # padded grid 4×6 = 24 elements per memory frame
CONFIG = {
    "mem_every": 2,
    "deep_update_every": -1,
    "top_k": 16,
    "enable_long_term": True,
    "enable_long_term_count_usage": True,
    "max_mid_term_frames": 4,
    "min_mid_term_frames": 2,
    "num_prototypes": 8,
    "max_long_term_elements": 40,
}


def one_hot(index_mask, labels):
    return torch.from_numpy(np.stack([index_mask == lab for lab in labels]).astype(np.float32))


# Per video: object count and the frame at which the last object is added (None: all at t=0).
VIDEOS = [
    dict(n=2, add_at=None, seed=1),
    dict(n=1, add_at=None, seed=2),
    dict(n=3, add_at=5, seed=3),
    dict(n=2, add_at=3, seed=4),
]
T = 10


def video_calls(spec):
    """The reference protocol per frame: (labels or None, index mask or None, valid_labels)."""
    frames, labels = synthetic_video(T, H, W, spec["n"], spec["seed"])
    calls = []
    for t in range(T):
        if t == 0:
            first = list(range(1, spec["n"] + (0 if spec["add_at"] else 1)))
            lab0 = np.where(np.isin(labels[0], first), labels[0], 0)
            calls.append((first, lab0, first))
        elif t == spec["add_at"]:
            allx = list(range(1, spec["n"] + 1))
            new = np.where(labels[t] == spec["n"], spec["n"], 0)
            calls.append((allx, new, [spec["n"]]))
        else:
            calls.append((None, None, None))
    return frames, calls


@pytest.mark.parametrize(
    "config",
    [
        CONFIG,
        {**CONFIG, "deep_update_every": 3, "enable_long_term_count_usage": False},
        {**CONFIG, "enable_long_term": False},
    ],
    ids=["sync", "async-nousage", "no-longterm"],
)
def test_batched_equals_per_video(recipe_xmem, config):
    data = [video_calls(v) for v in VIDEOS]
    singles = []
    for frames, calls in data:
        core = InferenceCore(recipe_xmem, config)
        outs = []
        for t, (labels, mask, valid) in enumerate(calls):
            if labels is not None:
                core.set_all_labels(labels)
            m = None if mask is None else one_hot(mask, core.all_labels)
            outs.append(
                (
                    core.step(normalise(frames[t]), m, valid, end=t == T - 1),
                    core.memory.get_hidden()[0].clone(),
                )
            )
        singles.append(outs)

    engine = BatchedInferenceCore(recipe_xmem, config, batch_size=len(VIDEOS))
    for t in range(T):
        masks, valids = [], []
        for b, (_, calls) in enumerate(data):
            labels, mask, valid = calls[t]
            if labels is not None:
                engine.set_all_labels(b, labels)
            masks.append(None if mask is None else torch.from_numpy(mask.astype(np.int64)))
            valids.append(valid)
        images = torch.stack([normalise(frames[t]) for frames, _ in data])
        probs = engine.step(images, masks, valids, end=t == T - 1)
        for b in range(len(VIDEOS)):
            ref_prob, ref_hidden = singles[b][t]
            assert probs[b].shape == ref_prob.shape
            torch.testing.assert_close(probs[b], ref_prob, atol=1e-4, rtol=0)
            torch.testing.assert_close(
                engine.videos[b].memory.get_hidden()[0], ref_hidden, atol=1e-4, rtol=0
            )
    sizes = [engine.videos[b].memory.work_mem.num_groups for b in range(len(VIDEOS))]
    assert sizes == [1, 1, 2, 2]  # mid-video additions made their own object groups


def test_inactive_videos_are_not_stepped(recipe_xmem):
    frames, labels = synthetic_video(3, H, W, 1, seed=7)
    engine = BatchedInferenceCore(recipe_xmem, CONFIG, batch_size=2)
    for b in range(2):
        engine.set_all_labels(b, [1])
    mask = torch.from_numpy(labels[0].astype(np.int64))
    img = torch.stack([normalise(frames[0])] * 2)
    out = engine.step(img, [mask, None], active=[True, False])
    assert out[1] is None and engine.videos[1].curr_ti == -1
    out = engine.step(img, [None, mask], active=[True, True])
    assert out[0].shape == out[1].shape == (2, H, W)


def test_memory_stays_within_caps_over_200_frames(recipe_xmem):
    h, w = 48, 64  # 3×4 = 12 elements per memory frame
    cfg = {
        "mem_every": 1,
        "top_k": 8,
        "max_mid_term_frames": 3,
        "min_mid_term_frames": 2,
        "num_prototypes": 6,
        "max_long_term_elements": 30,
    }
    frames, labels = synthetic_video(200, h, w, 2, seed=11)
    core = InferenceCore(recipe_xmem, cfg)
    core.set_all_labels([1, 2])
    hw = 12
    for t in range(200):
        mask = one_hot(labels[0], [1, 2]) if t == 0 else None
        prob = core.step(normalise(frames[t]), mask, [1, 2] if t == 0 else None)
        assert torch.isfinite(prob).all()
        assert core.memory.work_mem.size <= cfg["max_mid_term_frames"] * hw
        assert core.memory.long_mem.size <= cfg["max_long_term_elements"]
    assert core.memory.long_mem.size > cfg["max_long_term_elements"] // 2  # it did fill up


def test_bad_inputs_get_clear_errors(recipe_xmem):
    frames, labels = synthetic_video(2, H, W, 2, seed=5)
    image = normalise(frames[0])
    core = InferenceCore(recipe_xmem, CONFIG)
    with pytest.raises(ValueError, match="3×H×W"):
        core.step(image[None])
    with pytest.raises(TypeError, match="float"):
        core.step(torch.from_numpy(frames[0]).permute(2, 0, 1).contiguous())
    with pytest.raises(ValueError, match="before set_all_labels"):
        core.step(image, one_hot(labels[0], [1, 2]))
    core = InferenceCore(recipe_xmem, CONFIG)
    core.set_all_labels([1, 2])
    with pytest.raises(ValueError, match="RGB"):
        core.step(image, torch.from_numpy(frames[0]))
    with pytest.raises(ValueError, match="index mask"):
        core.step(image, torch.rand(H, W))
    with pytest.raises(ValueError, match=r"labels \[7\]"):
        core.step(image, torch.full((H, W), 7))
    core = InferenceCore(recipe_xmem, CONFIG)
    with pytest.raises(ValueError, match="first frame needs a mask"):
        core.step(image)
    assert core.curr_ti == -1  # a refused step changes nothing
    core.set_all_labels([1, 2])
    assert core.step(image, one_hot(labels[0], [1, 2]), [1, 2]).shape == (3, H, W)
    engine = BatchedInferenceCore(recipe_xmem, CONFIG, batch_size=2)
    with pytest.raises(ValueError, match="one image size"):
        engine.step([image, torch.zeros(3, H + 16, W)])
    with pytest.raises(ValueError, match="unknown XMem config"):
        InferenceCore(recipe_xmem, {"topk": 20})


class PickledThing:
    """An arbitrary Python object: weights_only loading must refuse it."""


def test_checkpoint_errors(tmp_path):
    net = load_xmem(None)  # random init, warns
    other = {"conv.weight": torch.zeros(3, 3), "fc.bias": torch.zeros(3)}
    with pytest.raises(CheckpointError, match="not an XMem state dict"):
        load_xmem(other)
    sd = net.state_dict()
    sd.pop("decoder.pred.bias")
    sd["extra.weight"] = torch.zeros(1)
    sd["key_proj.d_proj.bias"] = torch.zeros(2)
    with pytest.raises(CheckpointError) as err:
        load_xmem(sd)
    text = str(err.value)
    assert "missing keys (1)" in text and "decoder.pred.bias" in text
    assert "unexpected keys (1)" in text and "extra.weight" in text
    assert "shape mismatches (1)" in text and "key_proj.d_proj.bias" in text

    path = tmp_path / "evil.pth"
    torch.save({"model": PickledThing()}, path, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    with pytest.raises(CheckpointError, match="pickled"):
        load_xmem(path)


def test_single_object_and_no_hidden_checkpoints_load(tmp_path):
    net = load_xmem(None)
    sd = net.state_dict()
    sd["value_encoder.conv1.weight"] = sd["value_encoder.conv1.weight"][:, :4].clone()
    loaded = load_xmem(sd)
    assert torch.equal(
        loaded.value_encoder.conv1.weight[:, 4],
        torch.zeros_like(loaded.value_encoder.conv1.weight[:, 4]),
    )
    no_hidden = {
        k: v
        for k, v in net.state_dict().items()
        if "hidden_update" not in k and "hidden_reinforce" not in k
    }
    cv = 512
    w = no_hidden["decoder.fuser.block1.conv1.weight"]
    no_hidden["decoder.fuser.block1.conv1.weight"] = w[:, : 1024 + cv].clone()
    w = no_hidden["decoder.fuser.block1.downsample.weight"]
    no_hidden["decoder.fuser.block1.downsample.weight"] = w[:, : 1024 + cv].clone()
    model = load_xmem(no_hidden)
    assert model.hidden_dim == 0
    frames, labels = synthetic_video(3, H, W, 1, seed=9)
    core = InferenceCore(model, CONFIG)
    core.set_all_labels([1])
    core.step(normalise(frames[0]), one_hot(labels[0], [1]), [1])
    assert core.step(normalise(frames[1])).shape == (2, H, W)


def test_random_init_is_seeded():
    a = random_state_dict(load_xmem(None, seed=3), seed=3)
    b = load_xmem(None, seed=3).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = load_xmem(None, seed=4).state_dict()
    assert not torch.equal(b["decoder.pred.weight"], c["decoder.pred.weight"])
