"""Rooms for inputs and models: a new model and a new input are one file each plus one registry
line (here: both defined in this test, registered for its duration), and the prepare stage
runs XMem where the trainer's module lives."""

from __future__ import annotations

import json

import lightning as L
import numpy as np
import pytest
import torch
from torch import nn

from xmem_traj.config import TrainConfig
from xmem_traj.eval.scoring import load_predictor, predict, val_tensors
from xmem_traj.inputs import INPUTS, InputProvider, SplitTargets, xmem_context
from xmem_traj.methods import METHODS, Method
from xmem_traj.runs import RunLayout
from xmem_traj.train import run_training
from xmem_traj.traj.models import ModelSpec
from xmem_traj.traj.prepare import prepare, run_device

STEP_S = 0.5


class SpeedInput(InputProvider):
    """A toy input: each target's speed over its last past step (slot "toy_speed", (N,))."""

    slots = ("toy_speed",)

    def __init__(self, ctx):
        pass

    def build(self, split: SplitTargets) -> dict[str, np.ndarray]:
        speed = [np.linalg.norm(r.past[-1]) / STEP_S if len(r.past) else 0.0 for r in split.records]
        return {"toy_speed": np.asarray(speed, np.float32)}


class ConstantVelocity(nn.Module):
    """A toy model: straight ahead (+y in the agent frame) at the toy input's speed, one mode;
    a learnable gain so that the optimiser has something to train."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        assert spec.shapes["toy_speed"] == ()
        self.steps = torch.arange(1, spec.future_steps + 1) * STEP_S
        self.gain = nn.Parameter(torch.ones(()))

    def forward(self, batch):
        speed = batch.extras["toy_speed"] * self.gain
        ahead = speed[:, None] * self.steps.to(speed)
        traj = torch.stack([torch.zeros_like(ahead), ahead], -1)[:, None]
        return traj, torch.zeros(len(batch), 1, device=speed.device)


@pytest.fixture()
def toy_registry(monkeypatch):
    monkeypatch.setitem(INPUTS, "toy_speed", SpeedInput)
    monkeypatch.setitem(
        METHODS,
        "toy_cv",
        Method("toy_cv", "toy constant velocity", ConstantVelocity, inputs=("toy_speed",)),
    )


def test_a_new_model_and_input_train_and_evaluate(toy_registry, synth_root, tmp_path):
    cfg = TrainConfig.of(
        dataroot=str(synth_root),
        cache_dir=str(tmp_path / "cache"),
        run_dir=str(tmp_path / "runs"),
        name="toy",
        methods="toy_cv",
        max_steps=2,
        epochs=1,
        seeds=1,
        progress=False,
    )
    run = run_training(cfg)
    ckpt = torch.load(RunLayout(run).checkpoint("toy_cv", 0), weights_only=True)
    assert ckpt["global_step"] == 2 and ckpt["state_dict"]["model.gain"] != 1.0  # trained
    summary = json.loads((run / "eval.json").read_text())
    row = summary["metrics"]["all"]["toy constant velocity"]
    assert (
        0
        < row["MinFDEK_1"][0]
        < summary["metrics"]["all"]["ConstantVelocityHeading"]["MinFDEK_1"][0] * 5
    )
    assert "toy constant velocity vs ConstantVelocityHeading" in summary["comparisons"]
    # predicted through the same glue: the prepared val split with the toy slot
    data = prepare(cfg, roles=("val",))
    pred, probs, gt, _ = predict(
        load_predictor(RunLayout(run).checkpoint("toy_cv", 0)), val_tensors(data, "toy_cv")
    )
    assert pred.shape[1:] == (1, 12, 2) and torch.equal(probs, torch.ones_like(probs))


def test_extraction_runs_on_the_trainers_device(synth_root, tmp_path, monkeypatch):
    """The prepare stage hands XMem extraction the device the trainer's module lives on (on
    main before the prepare stage, extraction always ran on the CPU)."""
    base = dict(
        dataroot=str(synth_root),
        cache_dir=str(tmp_path / "cache"),
        methods="xmem",
        image_height=64,
        image_width=128,
        progress=False,
        precision="32",
    )
    seen = []

    def fake_extract(ds, backbone, weights, root, *, device, **kw):
        seen.append(torch.device(device))
        n, t = len(ds), ds.window_len
        return {
            "features": np.zeros((n, t, backbone.feature_dim), np.float32),
            "valid": np.ones((n, t), bool),
        }

    monkeypatch.setattr(xmem_context, "load_or_extract", fake_extract)
    cpu = TrainConfig.of(**base, accelerator="cpu")
    prepare(cpu, roles=("val",))
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False)
    assert seen == [trainer.strategy.root_device] == [run_device(cpu)]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU machine, as seen here
    prepare(TrainConfig.of(**base, accelerator="gpu"), roles=("val",))
    assert seen[-1] == torch.device("cuda", 0)
