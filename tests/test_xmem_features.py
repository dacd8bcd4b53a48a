"""Feature read-out: pooling and geometry on known masks, and shapes from a real step."""

import numpy as np
import torch

from conftest import normalise, synthetic_video
from xmem_traj.xmem import InferenceCore, mask_geometry, mask_pool, object_features


def test_mask_geometry_of_a_box():
    prob = torch.zeros(2, 10, 20)
    prob[0, 2:6, 5:15] = 1.0  # rows 2..5, cols 5..14
    g = mask_geometry(prob)
    area, cx, cy, x0, y0, x1, y1 = g[0].tolist()
    assert abs(area - 40 / 200) < 1e-6
    assert abs(cx - 10 / 20) < 1e-6 and abs(cy - 4 / 10) < 1e-6
    assert np.allclose([x0, y0, x1, y1], [5 / 20, 2 / 10, 15 / 20, 6 / 10])
    assert torch.equal(g[1], torch.zeros(7))  # empty mask


def test_mask_pool_weights():
    feat = torch.arange(2 * 2 * 2, dtype=torch.float32).view(2, 2, 2)  # C=2, 2×2
    w = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.5, 0.5], [0.0, 0.0]]])
    out = mask_pool(feat, w)
    assert torch.allclose(out[0], torch.tensor([0.0, 4.0]), atol=1e-5)
    assert torch.allclose(out[1], torch.tensor([0.5, 4.5]), atol=1e-5)


def test_object_features_from_steps(recipe_xmem):
    frames, labels = synthetic_video(3, 72, 100, 2, seed=3)  # odd size: padding exercised
    core = InferenceCore(recipe_xmem, {"top_k": 10, "mem_every": 1})
    core.set_all_labels([1, 2])
    mask = torch.from_numpy(labels[0].astype(np.int64))
    core.step(normalise(frames[0]), mask, [1, 2])
    f0 = object_features(core.last_output)
    assert f0["readout_pooled"].shape == (2, 0)  # frame 0 is not segmented
    core.step(normalise(frames[1]))
    f1 = object_features(core.last_output)
    shapes = {k: tuple(v.shape) for k, v in f1.items()}
    assert shapes == {
        "hidden_mean": (2, 64),
        "hidden_pooled": (2, 64),
        "readout_pooled": (2, 512),
        "key_pooled": (2, 64),
        "f16_pooled": (2, 1024),
        "geometry": (2, 7),
        "f8_pooled": (2, 512),
        "f8_halves": (2, 1024),
        "f4_halves": (2, 512),
    }
    # the halves split each object's mass: their mass-weighted mean is the whole-mask pooling
    assert torch.isfinite(f1["f8_halves"]).all() and not torch.equal(
        f1["f8_halves"][:, :512], f1["f8_halves"][:, 512:]
    )
    hid = core.memory.get_hidden()[0]
    assert torch.allclose(f1["hidden_mean"], hid.mean(dim=(2, 3)))
    assert all(torch.isfinite(v).all() for v in f1.values())
