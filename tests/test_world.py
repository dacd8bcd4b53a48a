"""The map the head reads: the agent-frame raster is the devkit's drivable area seen from the
agent (heading along +y, x to its right), as the off-road loss reads it. (The synthetic city
itself is tested in test_sumo_world.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from xmem_traj.config import TrainConfig
from xmem_traj.data.maps import MAP_CELL, MAP_SHAPE, MAP_X, MAP_Y, PIXELS_PER_METER, DrivableMaps
from xmem_traj.traj.batch import TrajBatch
from xmem_traj.traj.metrics import offroad_loss
from xmem_traj.traj.predictor import training_loss


def _one_street() -> DrivableMaps:
    """A map ("town") with one north-south street 10 m wide, x in [100, 110] m, y in [0, 300] m."""
    mask = np.zeros((int(400 * PIXELS_PER_METER), int(300 * PIXELS_PER_METER)), np.uint8)
    mask[: 300 * PIXELS_PER_METER, 100 * PIXELS_PER_METER : 110 * PIXELS_PER_METER] = 1
    return DrivableMaps({"town": mask})


def test_map_raster_is_the_drivable_area_in_the_agent_frame():
    maps = _one_street()
    north, east = maps.rasters(
        ["town", "town"],
        np.array([[105.0, 100.0, 0], [105.0, 100.0, 0]]),
        np.array([np.pi / 2, 0.0]),
    )
    cols = MAP_X[0] + (np.arange(MAP_SHAPE[1]) + 0.5) * MAP_CELL  # x across the raster
    rows = MAP_Y[0] + (np.arange(MAP_SHAPE[0]) + 0.5) * MAP_CELL  # y along it
    # Heading north along the street: drivable straight ahead, within ±5 m of the agent's x.
    assert np.allclose(north[:, np.abs(cols) < 4], 1) and np.allclose(north[:, np.abs(cols) > 6], 0)
    # Heading east across it: the street lies across the raster's rows at y in ±5 m.
    assert np.allclose(east[np.abs(rows) < 4], 1) and np.allclose(east[np.abs(rows) > 6], 0)
    # Off the canvas is not drivable.
    far = maps.rasters(["town"], np.array([[-500.0, -500.0, 0]]), np.array([0.0]))
    assert far.max() == 0


def test_offroad_loss_reads_the_raster_in_the_agent_frame():
    """--offroad-loss: on a real raster (an agent heading east across a north-south street 10 m
    wide) a mode driving straight on leaves the road, modes turning into the street do not; the
    gradient pulls an off-road point back; points beyond the raster count for nothing."""
    raster = torch.from_numpy(
        _one_street().rasters(["town"], np.array([[105.0, 100.0, 0]]), np.array([0.0]))
    )  # heading east
    steps = torch.arange(1, 13, dtype=torch.float32) * 2.0  # 2 … 24 m
    zero = torch.zeros(12)
    straight = torch.stack([zero, steps], -1)
    left, right = torch.stack([-steps, zero], -1), torch.stack([steps, zero], -1)
    loss = lambda *modes: offroad_loss(torch.stack(modes)[None], raster).item()  # noqa: E731
    assert loss(left) < 0.01 and loss(right) < 0.01
    assert loss(straight) > 0.7  # 2 of 12 points on it
    beyond = torch.stack([zero, steps + 60.0], -1)  # ahead of the raster
    assert loss(left, beyond) == pytest.approx(loss(left))
    point = torch.tensor([[[[0.0, 6.0]]]], requires_grad=True)  # just past the kerb
    offroad_loss(point, raster).backward()
    assert point.grad[..., 1].item() > 0  # descent: back onto it
    # Without the map (--no-map, or a dataroot without the map expansion) a batch has no
    # raster: the loss adds nothing there, whatever its weight.
    batch = TrajBatch(
        past=torch.zeros(1, 4, 2),
        past_valid=torch.ones(1, 4, dtype=torch.bool),
        traj=straight[None],
        future_valid=torch.ones(1, 12, dtype=torch.bool),
        translation=torch.zeros(1, 3),
        rotation=torch.tensor([[1.0, 0, 0, 0]]),
        index=torch.zeros(1, dtype=torch.long),
    )
    modes, logits = torch.stack([straight, left])[None], torch.zeros(1, 2)
    plain = training_loss(nn.Identity(), batch, modes, logits, {})
    weighted = training_loss(nn.Identity(), batch, modes, logits, {}, offroad_weight=5.0)
    assert torch.equal(plain[0], weighted[0]) and "offroad_loss" not in weighted[3]
    batch.extras["map"] = raster
    weighted = training_loss(nn.Identity(), batch, modes, logits, {}, offroad_weight=5.0)
    assert weighted[3]["offroad_loss"] > 0.3 and weighted[0] > plain[0]
    assert TrainConfig.of(map=False).experimental.offroad_loss > 0  # valid: inert there


def test_a_stop_carrying_a_turns_indicator_reads_either_side():
    """A stop before a turn carries the turn's indicator but has no side of its own (world seed
    2026 has one): the reader counts the indicator seen on either side, and a turn only on its
    own side."""
    from xmem_traj.data.world_file import WorldFile

    left_only = {"left_seen": True, "right_seen": False}
    assert WorldFile._indicator_seen(left_only, {"kind": "stop", "side": ""})
    assert not WorldFile._indicator_seen(
        {"left_seen": False, "right_seen": False}, {"kind": "stop", "side": ""}
    )
    assert WorldFile._indicator_seen(left_only, {"kind": "turn", "side": "left"})
    assert not WorldFile._indicator_seen(left_only, {"kind": "turn", "side": "right"})
