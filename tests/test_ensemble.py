"""Seeds as one ensemble: K seeds stacked into one model compute what the K seeds compute
alone, and one training step of the stack moves every seed's weights as its own step would."""

from __future__ import annotations

from dataclasses import asdict

import lightning as L
import pytest
import torch

from xmem_traj.config_groups import ExperimentalConfig, ModelConfig
from xmem_traj.traj.batch import TrajBatch
from xmem_traj.traj.ensemble import EnsemblePredictor
from xmem_traj.traj.predictor import TrajectoryPredictor
from xmem_traj.traj.stacking import NotStackable, stack_models, unstacked_state

T, P, F, C, LABELS = 5, 4, 12, 24, 6


def spec(method: str, inputs: tuple[str, ...], shapes: dict) -> dict:
    model = asdict(ModelConfig(hidden=16, modes=3, dropout=0.0, vision="cues", cue_loss=1.0))
    return {
        "method": method,
        "inputs": list(inputs),
        "model": model,
        "experimental": asdict(ExperimentalConfig()),
        "past_steps": P,
        "future_steps": F,
        "shapes": {k: list(v) for k, v in shapes.items()},
    }


SHAPES = {
    "map": (32, 24),
    "xmem": (T, C),
    "xmem_valid": (T,),
    "cue_labels": (T, LABELS),
    "cue_labels_valid": (T,),
}
METHODS = {
    "xmem": spec("xmem", ("xmem",), SHAPES),
    "history_only": spec("history_only", (), {"map": (32, 24)}),
}


def batch(n: int, seed: int) -> TrajBatch:
    g = torch.Generator().manual_seed(seed)
    traj = torch.cumsum(torch.rand(n, F, 2, generator=g), 1)
    return TrajBatch(
        past=-torch.flip(torch.cumsum(torch.rand(n, P, 2, generator=g), 1), [1]),
        past_valid=torch.rand(n, P, generator=g) > 0.2,
        traj=traj,
        future_valid=torch.ones(n, F, dtype=torch.bool),
        translation=torch.randn(n, 3, generator=g),
        rotation=torch.tensor([[1.0, 0, 0, 0]]).expand(n, 4),
        index=torch.arange(n),
        extras={
            "map": torch.rand(n, 32, 24, generator=g),
            "xmem": torch.randn(n, T, C, generator=g),
            "xmem_valid": torch.rand(n, T, generator=g) > 0.3,
            "cue_labels": (torch.rand(n, T, LABELS, generator=g) > 0.5).float(),
            "cue_labels_valid": torch.rand(n, T, generator=g) > 0.4,
        },
    )


def members(method: str, seeds=(0, 1, 2)) -> list[TrajectoryPredictor]:
    out = []
    for s in seeds:
        L.seed_everything(s, verbose=False)
        out.append(
            TrajectoryPredictor(
                spec=METHODS[method], lr=2e-3, weight_decay=1e-4, epochs=5, seed=s, offroad_loss=0.5
            )
        )
    return out


def one_step(module, data: TrajBatch) -> None:
    module.log = lambda *a, **k: None  # (no trainer attached)
    opt = module.configure_optimizers()["optimizer"]
    module.training_step(data, 0).backward()
    opt.step()


@pytest.mark.parametrize("method", ["xmem", "history_only"])
def test_one_stacked_step_equals_each_seed_alone(method):
    alone, stacked = members(method), EnsemblePredictor(members(method))
    parts = [batch(8, seed=10 + i) for i in range(3)]  # each seed its own data order
    for model, data in zip(alone, parts):
        one_step(model, data)
    one_step(stacked, TrajBatch.cat(parts))
    for i, model in enumerate(alone):
        mine = unstacked_state(stacked.model, i)
        theirs = {
            k.removeprefix("model."): v
            for k, v in model.state_dict().items()
            if k.startswith("model.")
        }
        assert mine.keys() == theirs.keys()
        for k in theirs:
            torch.testing.assert_close(mine[k], theirs[k], rtol=1e-4, atol=1e-5, msg=k)


def test_a_stacked_seed_predicts_as_it_alone():
    alone = members("xmem")
    stacked = stack_models([m.model for m in alone]).eval()
    data = batch(6, seed=3)
    with torch.no_grad():
        together = stacked(TrajBatch.cat([data] * 3))
        for i, model in enumerate(alone):
            traj, logits = model.model.eval()(data)
            torch.testing.assert_close(together[0][6 * i : 6 * (i + 1)], traj, rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(
                together[1][6 * i : 6 * (i + 1)], logits, rtol=1e-4, atol=1e-4
            )


def test_models_with_buffers_do_not_stack():
    heads = [torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3)) for _ in range(2)]
    with pytest.raises(NotStackable):
        stack_models(heads)


def test_methods_trained_in_processes_equal_those_trained_in_this_one(synth_root, tmp_path):
    """The heads stage in two forked processes (one thread each, heads_pool.py) writes the
    checkpoints one process writes, to float tolerance (fp32; reductions may split
    differently over one thread than over two)."""
    from conftest import tiny_config
    from xmem_traj.heads_pool import head_workers
    from xmem_traj.runs import RunLayout
    from xmem_traj.train import run_training

    runs, lines = {}, {}
    for workers in (1, 2):
        cfg = tiny_config(
            synth_root,
            tmp_path,
            methods="history_only,scene_state_oracle",
            seeds=2,
            precision="32",
            head_workers=workers,
            name=f"w{workers}",
        )
        assert head_workers(cfg, cfg.model.method_list) == workers
        out: list[str] = []
        runs[workers] = RunLayout(run_training(cfg, report=out.append))
        lines[workers] = out
    for method in ("history_only", "scene_state_oracle"):
        for seed in range(2):
            one, two = (
                torch.load(runs[w].checkpoint(method, seed), weights_only=True)["state_dict"]
                for w in (1, 2)
            )
            assert one.keys() == two.keys()
            for k in one:
                torch.testing.assert_close(one[k], two[k], rtol=1e-4, atol=1e-5, msg=k)
    epoch_lines = [line for line in lines[2] if "Epoch 1:" in line]
    assert {line.split("]")[0] for line in epoch_lines} >= {"[history-only", "[scene-state-oracle"}


def test_head_workers_follow_the_trainers_device(monkeypatch):
    """Forked CPU processes only where the trainer runs on the CPU: one process on a GPU or
    MPS, whatever the accelerator was called, and with DDP or a single method."""
    from xmem_traj import heads_pool
    from xmem_traj.config import TrainConfig

    monkeypatch.setattr(heads_pool, "usable_cores", lambda: 2)
    cfg = TrainConfig().with_options(methods="xmem,history_only", accelerator="cpu")
    assert heads_pool.head_workers(cfg, ["xmem", "history_only"]) == 2
    assert heads_pool.head_workers(cfg, ["xmem"]) == 1
    assert heads_pool.head_workers(cfg.with_options(devices=2), ["xmem", "history_only"]) == 1
    auto = cfg.with_options(accelerator="auto")
    for device in ("mps", "cuda"):
        monkeypatch.setattr(heads_pool, "run_device", lambda cfg, d=device: torch.device(d))
        assert heads_pool.head_workers(auto, ["xmem", "history_only"]) == 1
    monkeypatch.setattr(heads_pool, "run_device", lambda cfg: torch.device("cpu"))
    assert heads_pool.head_workers(auto, ["xmem", "history_only"]) == 2
