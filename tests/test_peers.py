"""The devkit's MTP and CoverNet as methods: their output layout as the devkit's losses read
it, CoverNet's ε-cover, and the devkit's rasters as we draw them (a few training steps of each,
scored by the devkit's own metric classes: tests/test_foreign_root.py)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import torch
from nuscenes.eval.prediction.splits import get_prediction_challenge_split
from nuscenes.prediction import PredictHelper
from nuscenes.prediction.input_representation.agents import AgentBoxesWithFadedHistory
from nuscenes.prediction.input_representation.combinators import Rasterizer
from nuscenes.prediction.input_representation.interface import InputRepresentation
from nuscenes.prediction.input_representation.static_layers import StaticLayerRasterizer

from xmem_traj.inputs.lattice import epsilon_cover
from xmem_traj.inputs.neighbours import neighbour_arrays
from xmem_traj.inputs.rasters import draw_rasters
from xmem_traj.traj.batch import TrajBatch
from xmem_traj.traj.models import ModelSpec
from xmem_traj.traj.models.peers import DevkitCoverNet, DevkitMTP, devkit_models

K, F = 3, 12


def _batch(n: int, size: int = 64) -> TrajBatch:
    g = torch.Generator().manual_seed(0)
    return TrajBatch(
        past=torch.zeros(n, 4, 2),
        past_valid=torch.ones(n, 4, dtype=torch.bool),
        traj=torch.randn(n, F, 2, generator=g) * 5,
        future_valid=torch.ones(n, F, dtype=torch.bool),
        translation=torch.zeros(n, 3),
        rotation=torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1),
        index=torch.arange(n),
        extras={
            "raster": torch.randint(0, 255, (n, 3, size, size), dtype=torch.uint8, generator=g),
            "agent_state": torch.randn(n, 3, generator=g),
        },
    )


def _spec(**shapes) -> ModelSpec:
    model = {"modes": K, "peer_backbone": "resnet18", "peer_hidden": 32}
    return ModelSpec("mtp", ("raster", "agent_state"), model, {}, 4, F, shapes)


def test_mtp_modes_are_laid_out_as_the_devkits_loss_reads_them():
    model = DevkitMTP(_spec(raster=(3, 64, 64), agent_state=(3,)))
    batch = _batch(4)
    traj, scores, extras = model.forward_train(batch)
    devkit_traj, devkit_scores = (
        devkit_models()[1].MTPLoss(K)._get_trajectory_and_modes(extras["mtp_output"])
    )
    assert traj.shape == (4, K, F, 2)
    assert torch.equal(traj, devkit_traj) and torch.equal(scores, devkit_scores)
    loss = model.losses(batch, traj, scores, extras)["loss"]
    loss.backward()
    assert torch.isfinite(loss) and model.net.fc1.weight.grad.abs().sum() > 0
    model.eval()  # MTP returns probabilities in eval mode; ours are logits with those softmaxes
    with torch.no_grad():
        eval_traj, logits = model(batch)
        probs = model.net(batch.extras["raster"].float() / 255, batch.extras["agent_state"])
    torch.testing.assert_close(logits.softmax(-1), probs[:, -K:])
    torch.testing.assert_close(eval_traj, model.split(probs)[0])


def test_covernet_scores_are_the_devkits_before_its_last_relu():
    lattice = torch.cumsum(torch.randn(7, F, 2), 1)
    spec = _spec(raster=(3, 64, 64), agent_state=(3,), lattice=tuple(lattice.shape))
    model = DevkitCoverNet(replace(spec, constants={"lattice": lattice.numpy()})).eval()
    batch = _batch(4)
    with torch.no_grad():
        scores = model.scores(batch)
        devkit = model.net(batch.extras["raster"].float() / 255, batch.extras["agent_state"])
        traj, logits = model(batch)
    torch.testing.assert_close(scores.relu(), devkit)
    assert traj.shape == (4, K, F, 2) and torch.equal(logits, scores.topk(K, 1).values)
    assert torch.equal(traj, lattice[scores.topk(K, 1).indices])


def test_the_epsilon_cover_covers_every_future_within_eps():
    rng = np.random.default_rng(0)
    t = np.arange(1, F + 1)[:, None] * 0.5
    bases = [np.hstack([0 * t, v * t]) for v in (2.0, 6.0, 12.0)] + [np.hstack([t**2, 6 * t])]
    futures = np.concatenate([b + rng.normal(scale=0.3, size=(75, F, 2)) for b in bases])
    sizes = []
    for eps in (0.01, 1.5, 3.0):
        members = futures[epsilon_cover(futures, eps)]
        worst = np.linalg.norm(futures[:, None] - members[None], axis=-1).max(-1).min(1)
        assert (worst <= eps).all()  # every future is covered
        sizes.append(len(members))
    assert sizes[0] == len(futures) and len(bases) <= sizes[1] < 20 and sizes[2] <= sizes[1]


AGENT_COLOURS = np.array([(255, 0, 0), (255, 255, 0), (204, 0, 204), (255, 153, 51)])  # devkit


def _on_an_agent(image: np.ndarray, row: int, col: int) -> bool:
    """Whether a pixel within one of (row, col) has an agent's colour, faded or not (a
    multiple of one of the devkit's colours; not the map's white, not the black)."""
    patch = image[max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2].reshape(-1, 3)
    for pixel in patch.astype(float):
        scale = pixel.max() / 255.0
        if scale > 0 and (np.abs(AGENT_COLOURS * scale - pixel).max(1) <= 2).any():
            return True
    return False


def test_the_rasters_up_and_right_are_our_agent_frames_plus_y_and_plus_x(nusc, synth_root):
    """Each neighbour (our agent frame, inputs/neighbours.py) lies on an agent's box in the
    devkit's raster: up is +y (ahead), right is +x; mirrored, some would not."""
    helper = PredictHelper(nusc)
    res, ahead, side = 0.25, 40.0, 25.0
    rep = InputRepresentation(
        StaticLayerRasterizer(helper, resolution=res),
        AgentBoxesWithFadedHistory(helper, resolution=res),
        Rasterizer(),
    )
    hits, mirrored, total = 0, 0, 0
    for token in get_prediction_challenge_split("mini_train", dataroot=str(synth_root))[:40]:
        inst, sample = token.split("_")
        ann = helper.get_sample_annotation(inst, sample)
        rec = SimpleNamespace(
            instance_token=inst,
            sample_token=sample,
            translation=ann["translation"],
            rotation=ann["rotation"],
        )
        arrays = neighbour_arrays(helper, [rec], max_neighbours=8, radius=20.0, past_steps=4)
        image = rep.make_input_representation(inst, sample)
        for (x, y), seen in zip(arrays["neighbours"][0, :, -1], arrays["neighbours_valid"][0]):
            if not seen[-1] or np.hypot(x, y) < 6 or not (-10 < y < ahead and abs(x) < side):
                continue  # absent, touching the target's own box, or out of the raster
            total += 1
            row = int((ahead - y) / res)
            hits += _on_an_agent(image, row, int((side + x) / res))
            mirrored += _on_an_agent(image, row, int((side - x) / res))
    # mirrored (x → -x), some neighbours land off every box: the check tells the two apart
    assert total >= 10 and hits == total and mirrored < total


def test_rasters_drawn_by_two_processes_are_the_bytes_one_draws(nusc, synth_root):
    helper = PredictHelper(nusc)
    extent = dict(resolution=1.0, meters_ahead=40, meters_behind=10, meters_left=25)
    rep = InputRepresentation(
        StaticLayerRasterizer(helper, **extent, meters_right=25),
        AgentBoxesWithFadedHistory(helper, **extent, meters_right=25),
        Rasterizer(),
    )
    tokens = get_prediction_challenge_split("mini_train", dataroot=str(synth_root))[:12]
    targets = [tuple(t.split("_")) for t in tokens]
    alone = draw_rasters(rep, targets, (50, 50), workers=1)
    shared = draw_rasters(rep, targets, (50, 50), workers=2)
    assert alone.shape == (12, 3, 50, 50) and alone.any()
    assert len({a.tobytes() for a in alone}) > 1  # different targets, different rasters
    np.testing.assert_array_equal(alone, shared)
