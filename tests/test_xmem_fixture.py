"""XMem against the reference's own numbers: every fixture in shared/xmem_reference/fixture_*."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
import torch

from conftest import fixture_dirs, normalise, reference_dir
from xmem_traj.xmem import InferenceCore, load_xmem, pad_divide_by
from xmem_traj.xmem.network import aggregate

ATOL = 1e-4
#: XMEM_TEST_DEVICE=cuda replays the fixtures on a GPU (bench/gpu_check.sh); results are
#: compared on the CPU with the same tolerance.
DEVICE = torch.device(os.environ.get("XMEM_TEST_DEVICE", "cpu"))


def one_hot(index_mask: np.ndarray, labels: list[int]) -> torch.Tensor:
    return torch.from_numpy(np.stack([index_mask == lab for lab in labels]).astype(np.float32))


def mask_for_call(inputs, call: dict, all_labels: list[int]) -> torch.Tensor:
    """The one-hot mask a call hands over. fixture.json describes it, e.g.
    'one-hot of inputs.npz["mask_t0"] over labels [1, 2] ...': the array and the channel labels
    are read from that text (falling back to inputs["mask_t<t>"] over all labels so far)."""
    text = call["mask"] if isinstance(call["mask"], str) else ""
    key = re.search(r'inputs\.npz\["([^"]+)"\]', text)
    key = key.group(1) if key else f"mask_t{call['t']}"
    if key not in inputs:
        raise KeyError(
            f"fixture call at t={call['t']} gives a mask but inputs.npz has no {key!r}; "
            f"keys: {sorted(inputs.keys())}"
        )
    labels = re.search(r"over labels \[([0-9, ]+)\]", text)
    labels = [int(x) for x in labels.group(1).split(",")] if labels else list(all_labels)
    index = inputs[key]
    # Channels over every label so far (the reference protocol); unlisted labels stay zero.
    return one_hot(np.where(np.isin(index, labels), index, 0), list(all_labels))


def run_fixture(network, fixture_dir):
    """Replays fixture.json's calls with the reference protocol; returns per-frame records."""
    spec = json.loads((fixture_dir / "fixture.json").read_text())
    inputs = np.load(fixture_dir / "inputs.npz")
    network = network.to(DEVICE)
    core = InferenceCore(network, spec["config"])
    records = []
    for call in spec["calls"]:
        t = call["t"]
        image = normalise(inputs["frames"][t]).to(DEVICE)
        if call.get("set_all_labels") is not None:
            core.set_all_labels(call["set_all_labels"])
        mask = None
        if call.get("mask") is not None:
            mask = mask_for_call(inputs, call, core.all_labels).to(DEVICE)
        prob = core.step(image, mask, valid_labels=call.get("valid_labels"), end=call["end"])
        mem = core.memory
        records.append(
            {
                "probs": prob.cpu(),
                "hidden": mem.get_hidden()[0].cpu(),
                "work_size": mem.work_mem.size,
                "long_size": mem.long_mem.size if mem.long_mem else 0,
                "work_groups": [mem.work_mem.get_v_size(g) for g in range(mem.work_mem.num_groups)],
                "long_groups": (
                    [mem.long_mem.get_v_size(g) for g in range(mem.long_mem.num_groups)]
                    if mem.long_mem
                    else []
                ),
                "output": core.last_output,
            }
        )
    return spec, records


@pytest.mark.parametrize("fixture_dir", fixture_dirs(), ids=lambda p: p.name)
def test_reference_fixture(recipe_xmem, fixture_dir):
    reference_dir()
    spec, records = run_fixture(recipe_xmem, fixture_dir)
    expected = np.load(fixture_dir / "expected.npz")
    assert len(records) == expected["probs"].shape[0]
    for t, (rec, call) in enumerate(zip(records, spec["calls"])):
        assert rec["work_size"] == call["work_size"] == expected["work_size"][t], f"t={t}"
        assert rec["long_size"] == call["long_size"] == expected["long_size"][t], f"t={t}"
        assert rec["work_groups"] == call["work_groups"], f"t={t}"
        assert rec["long_groups"] == call["long_groups"], f"t={t}"
        assert rec["hidden"].shape[0] == expected["hidden_num_objects"][t]
        np.testing.assert_allclose(
            rec["probs"].numpy(), expected["probs"][t], atol=ATOL, rtol=0, err_msg=f"probs at t={t}"
        )
        n = int(expected["hidden_num_objects"][t])
        np.testing.assert_allclose(
            rec["hidden"].numpy(),
            expected["hidden"][t][:n],
            atol=ATOL,
            rtol=0,
            err_msg=f"hidden at t={t}",
        )


@pytest.mark.parametrize("fixture_dir", fixture_dirs(), ids=lambda p: p.name)
def test_reference_intermediates(recipe_xmem, fixture_dir):
    """Module by module on frames 0 and 1, as the fixture README lists them."""
    reference_dir()
    net = recipe_xmem
    spec, records = run_fixture(net, fixture_dir)
    inputs = np.load(fixture_dir / "inputs.npz")
    inter = np.load(fixture_dir / "intermediates.npz")
    first = spec["calls"][0]
    labels = first["set_all_labels"]

    def close(name, actual):
        np.testing.assert_allclose(actual.numpy(), inter[name], atol=ATOL, rtol=ATOL, err_msg=name)

    with torch.no_grad():
        image0, _ = pad_divide_by(normalise(inputs["frames"][0]), 16)
        key, shrinkage, selection, f16, f8, f4 = net.encode_key(image0[None])
        close("f0_key", key[0])
        close("f0_shrinkage", shrinkage[0])
        close("f0_selection", selection[0])
        close("f0_f16", f16[0])
        close("f0_f8_every8th_channel", f8[0, 0::8])
        close("f0_f4_every8th_channel", f4[0, 0::8])
        mask0, _ = pad_divide_by(mask_for_call(inputs, first, labels), 16)
        prob0 = aggregate(mask0, dim=0)[1]
        zeros = torch.zeros((len(labels), net.hidden_dim, *key.shape[-2:]))
        value, hidden0 = net.encode_value(image0[None], f16, zeros, prob0[1:], [len(labels)])
        close("f0_value", value)
        close("f0_value_hidden_out", hidden0)

        image1, _ = pad_divide_by(normalise(inputs["frames"][1]), 16)
        key1, _, selection1, *feats1 = net.encode_key(image1[None], need_sk=False)
        close("f1_key", key1[0])
        close("f1_selection", selection1[0])
        readout = records[1]["output"].readout
        close("f1_memory_readout", readout)
        hidden_in = records[0]["hidden"]
        close("f1_hidden_in", hidden_in)
        hidden_out, logits = net.decoder(
            *feats1, hidden_in, readout, torch.zeros(readout.shape[0], dtype=torch.long)
        )
        close("f1_decoder_logits", logits)
        close("f1_decoder_hidden_out", hidden_out)


def test_recipe_checkpoint_file_roundtrip(recipe_state_dict, tmp_path):
    """The same weights through a file on disk: loaded with weights_only, config inferred."""
    path = tmp_path / "XMem.pth"
    torch.save(recipe_state_dict, path)
    net = load_xmem(path, map_location="cpu")
    assert (net.key_dim, net.value_dim, net.hidden_dim) == (64, 512, 64)
    own = net.state_dict()
    assert list(own) == list(recipe_state_dict)  # checkpoint key order too
    for k, v in recipe_state_dict.items():
        assert torch.equal(own[k], v), k
