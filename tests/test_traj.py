"""The main job: metrics vs the devkit, baselines, training smoke, resume, cache, DDP, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from nuscenes.eval.prediction.compute_metrics import compute_metrics
from nuscenes.eval.prediction.config import PredictionConfig
from nuscenes.eval.prediction.data_classes import Prediction
from nuscenes.eval.prediction.metrics import MinADEK, MinFDEK, MissRateTopK, RowMean
from nuscenes.prediction import PredictHelper
from nuscenes.prediction.models.physics import ConstantVelocityHeading, PhysicsOracle

from conftest import tiny_config
from xmem_traj.config import TrainConfig
from xmem_traj.data.agent_dataset import NuScenesAgentDataset
from xmem_traj.data.agent_frame import global_to_local, local_to_global
from xmem_traj.data.videos import group_video, group_windows
from xmem_traj.data.world_file import CUE_LABEL_FIELDS, SCENE_STATE_FIELDS
from xmem_traj.eval.baselines import run_baseline
from xmem_traj.eval.report import format_report
from xmem_traj.eval.scoring import (
    evaluate_run,
    load_predictor,
    predict,
    prediction_json,
    road_snap,
    score,
    val_tensors,
)
from xmem_traj.eval.viz import render_examples
from xmem_traj.inputs import feature_cache
from xmem_traj.inputs.xmem_input import make_backbone
from xmem_traj.runs import RunLayout
from xmem_traj.train import run_training
from xmem_traj.traj.prepare import prepare

BIN = Path(sys.executable).parent


def train_split(cfg: TrainConfig) -> NuScenesAgentDataset:
    """The config's train targets (indexed, no input built)."""
    root = cfg.data.dataroot
    return NuScenesAgentDataset.from_config(
        cfg.data, root, "v1.0-mini", "mini_train", image_size=cfg.xmem.image_size
    )


def backbone_of(cfg: TrainConfig):
    return make_backbone(cfg.resolved(world_file=True))


@pytest.fixture(scope="module")
def val_targets(synth_root, nusc):
    return NuScenesAgentDataset.from_nuscenes(
        synth_root, "v1.0-mini", "mini_val", nusc=nusc, image_size=(64, 128)
    )


def devkit_config():
    return PredictionConfig(
        [
            MinADEK([1, 5, 10], [RowMean()]),
            MinFDEK([1, 5, 10], [RowMean()]),
            MissRateTopK([1, 5, 10], [RowMean()], tolerance=2.0),
        ],
        seconds=6,
    )


def test_metrics_equal_devkit_compute_metrics(val_targets, nusc):
    helper = PredictHelper(nusc)
    rng = np.random.default_rng(0)
    gts = np.stack(
        [
            helper.get_future_for_agent(r.instance_token, r.sample_token, 6, False)
            for r in val_targets.records
        ]
    )
    modes = 7
    preds = gts[:, None] + rng.normal(0, 1.0, (len(gts), modes, 12, 2)).cumsum(2) * 0.3
    probs = rng.dirichlet(np.ones(modes), size=len(gts))
    jsons = [
        Prediction(r.instance_token, r.sample_token, p, pr).serialize()
        for r, p, pr in zip(val_targets.records, preds, probs)
    ]
    ref = compute_metrics(jsons, helper, devkit_config())
    ours = score(
        torch.tensor(preds),
        torch.tensor(probs),
        torch.tensor(gts),
        torch.ones(gts.shape[:2], dtype=torch.bool),
    )
    for name, key in (
        ("MinADEK", "MinADEK"),
        ("MinFDEK", "MinFDEK"),
        ("MissRateTopK_2.0", "MissRateTopK_2"),
    ):
        for i, k in enumerate((1, 5, 10)):
            assert ours[f"{key}_{k}"] == pytest.approx(ref[name]["RowMean"][i], abs=1e-5), (key, k)
    assert ours["MissRateTopK_2_1"] > 0 and ours["MissRateTopK_2_10"] < 1  # modes hit and miss


def test_baselines_reproduce_devkit_models(val_targets, nusc):
    helper = PredictHelper(nusc)
    tokens = [(r.instance_token, r.sample_token) for r in val_targets.records]
    for name, cls in (
        ("ConstantVelocityHeading", ConstantVelocityHeading),
        ("PhysicsOracle", PhysicsOracle),
    ):
        pred, probs = run_baseline(name, helper, tokens)
        direct = np.stack([cls(6, helper)(f"{i}_{s}").prediction for i, s in tokens])
        np.testing.assert_allclose(pred, direct, atol=1e-4)
        jsons = [
            Prediction(i, s, p.astype(float), pr.astype(float)).serialize()
            for (i, s), p, pr in zip(tokens, pred, probs)
        ]
        ref = compute_metrics(jsons, helper, devkit_config())
        gts = np.stack([helper.get_future_for_agent(i, s, 6, False) for i, s in tokens])
        ours = score(
            torch.tensor(pred),
            torch.tensor(probs),
            torch.tensor(gts),
            torch.ones(gts.shape[:2], dtype=torch.bool),
        )
        assert ours["MinFDEK_1"] == pytest.approx(ref["MinFDEK"]["RowMean"][0], abs=1e-4)


def test_agent_frame_roundtrip_matches_devkit(val_targets, nusc):
    helper = PredictHelper(nusc)
    r = val_targets.records[0]
    glob = helper.get_future_for_agent(r.instance_token, r.sample_token, 6, False)
    local = torch.tensor(r.future)[None]
    t, q = torch.tensor([r.translation]), torch.tensor([r.rotation])
    np.testing.assert_allclose(local_to_global(local, t, q)[0].numpy(), glob, atol=1e-3)
    np.testing.assert_allclose(
        global_to_local(torch.tensor(glob)[None].float(), t, q)[0].numpy(), r.future, atol=1e-3
    )


def test_smoke_train_resume_and_checkpoints(synth_root, tmp_path, capsys):
    cfg = tiny_config(synth_root, tmp_path, epochs=2, name="full", seeds=2)
    run = run_training(cfg, report=print)
    out = capsys.readouterr().out
    assert "[xmem] Epoch 0: ADE" in out and "[history-only] Epoch 1: ADE" in out and "(val)" in out
    assert "[xmem seed 1] Epoch 1: ADE" in out and "[xmem seed 1] Epoch 0" not in out
    assert (
        "| XMem + history (ours) (minFDE_1 sd over seeds" in out
    )  # the job reports its eval table
    assert "stage times: data" in out
    assert (
        "primary comparison (declared before the run)**: XMem + history (ours) vs history-only"
        in out
    )
    assert "exploratory, paired" in out
    layout = RunLayout(run)
    for rel in (
        "config.json",
        "versions.json",
        "checkpoints/xmem/seed0/last.ckpt",
        "checkpoints/xmem/seed1/last.ckpt",
        "checkpoints/history_only/seed0/last.ckpt",
        "checkpoints/history_only/seed1/last.ckpt",
        "logs/xmem-seed0/metrics.csv",
        "logs/xmem-seed1/metrics.csv",
        "eval.json",
    ):
        assert (run / rel).exists(), rel
    data = prepare(cfg, roles=("val",))
    drawn = render_examples(data, "xmem", layout.checkpoint("xmem", 0), count=1, out_dir=run / "v")
    assert drawn[0].path.exists() and all(0 <= v <= 1 for v in drawn[0].propagated_iou)
    summary = evaluate_run(layout, data)
    assert summary["seeds"] == {
        "XMem + history (ours)": 2,
        "history-only (ablation)": 2,
        "history + true scene state (diagnostic)": 2,
    }
    xmem = summary["metrics"]["all"]["XMem + history (ours)"]["MinFDEK_1"]
    assert np.isfinite(xmem[0]) and np.isnan(xmem[1:]).all()  # one val scene: no interval
    assert summary["primary"]["comparison"] == "XMem + history (ours) vs history-only (ablation)"
    assert "[95 % interval" in format_report(summary)
    # predict's devkit JSON goes through compute_metrics to what our eval gives that seed
    # (both decoded as eval and predict decode: the run's ranking and road snap).
    snap = road_snap(data)
    model = load_predictor(layout.checkpoint("xmem", 0))
    preds = prediction_json(model, val_tensors(data, "xmem"), data.val.records, snap=snap)
    ref = compute_metrics(
        json.loads(json.dumps(preds)), PredictHelper(data.context.nusc), devkit_config()
    )
    ours = score(*predict(model, val_tensors(data, "xmem"), snap=snap))
    assert ref["MinFDEK"]["RowMean"][0] == pytest.approx(ours["MinFDEK_1"], abs=1e-4)
    ckpt = torch.load(layout.checkpoint("xmem", 0), map_location="cpu", weights_only=True)
    assert "state_dict" in ckpt
    full = load_predictor(layout.checkpoint("xmem", 0)).state_dict()
    # The world's rooms: the oracle reads the true scene state of each frame, the XMem model's
    # cue readout is as wide as the side file's cue labels, the report has the cause subsets.
    assert data.val.arrays["scene_state"].shape[2] == len(SCENE_STATE_FIELDS)
    readout = [v for k, v in full.items() if k.endswith("cue_readout.weight")]
    assert readout and readout[0].shape[0] == len(CUE_LABEL_FIELDS)
    causes = {f"cause_{c}" for c in ("signal", "leader", "yield", "own_plan", "visible")}
    assert causes <= set(summary["subsets"]) and "foretold" in summary["subsets"]

    # The same run interrupted after its first epoch (max_steps), then resumed: same weights.
    steps_per_epoch = -(-len(train_split(cfg)) // cfg.optim.batch_size)
    part = run_training(
        cfg.with_options(name="part", methods="xmem", max_steps=steps_per_epoch), evaluate=False
    )
    part_ckpt = RunLayout(part).checkpoint("xmem", 0)
    assert torch.load(part_ckpt, weights_only=True)["global_step"] == steps_per_epoch
    resumed = run_training(
        cfg.with_options(name="part", methods="xmem"), resume_dir=str(part), evaluate=False
    )
    assert (
        resumed / "logs" / "xmem-seed0" / "metrics.csv"
    ).exists()  # the first attempt's log is kept
    assert list((resumed / "logs").glob("xmem-seed0-resumed*/metrics.csv"))
    again = load_predictor(RunLayout(resumed).checkpoint("xmem", 0)).state_dict()
    for k in full:
        assert torch.equal(full[k], again[k]), k


def test_feature_cache_reuse_and_rebuild(synth_root, tmp_path, monkeypatch):
    cfg = tiny_config(synth_root, tmp_path)
    train_set, backbone = train_split(cfg), backbone_of(cfg)
    weights = feature_cache.weights_fingerprint(None, cfg.optim.seed)
    cache = tmp_path / "fc"
    first = feature_cache.load_or_extract(train_set, backbone, weights, cache, progress=False)
    assert first["features"].shape[:2] == (len(train_set), 5)
    assert first["valid"][:, -1].all()  # every target is in view at its own sample
    entries = {p.name for p in (cache / "features").iterdir()}
    manifest = json.loads((cache / "features" / entries.pop() / "manifest.json").read_text())
    assert manifest["format"] == feature_cache.FORMAT_VERSION and manifest["windows"] < len(
        train_set
    )

    calls = []
    real = feature_cache.extraction.extract_groups
    monkeypatch.setattr(
        feature_cache.extraction, "extract_groups", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    again = feature_cache.load_or_extract(train_set, backbone, weights, cache, progress=False)
    assert not calls and np.array_equal(again["features"], first["features"])  # cache hit

    other_features = backbone_of(cfg.with_options(features="hidden_mean"))
    feature_cache.load_or_extract(train_set, other_features, weights, cache, progress=False)
    ckpt = tmp_path / "XMem.pth"
    torch.save(backbone.network.state_dict(), ckpt)
    feature_cache.load_or_extract(
        train_set, backbone, feature_cache.weights_fingerprint(str(ckpt)), cache, progress=False
    )
    assert len(calls) == 2 and len(list((cache / "features").iterdir())) == 3


def test_backbone_gradients_reach_finetuned_parts(synth_root, tmp_path):
    from xmem_traj.xmem import load_xmem

    cfg = tiny_config(synth_root, tmp_path)
    train_set = train_split(cfg)
    from xmem_traj.inputs.backbone import XMemBackbone

    bb = XMemBackbone(
        load_xmem(None),
        features=("hidden_mean",),
        masks="first",
        trainable=["value_encoder.hidden_reinforce"],
    )
    group = next(g for g in group_windows(train_set.records) if min(g.init_frames) <= 2)
    video = group_video(train_set.records, group, train_set.image_size)
    feats, valid = bb(video["frames"][None], [video["init_masks"]], [video["init_frames"].tolist()])
    feats[valid].sum().backward()
    grads = [
        p.grad
        for n, p in bb.network.named_parameters()
        if n.startswith("value_encoder.hidden_reinforce")
    ]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    assert all(
        p.grad is None for n, p in bb.network.named_parameters() if n.startswith("key_encoder")
    )


def test_ddp_two_cpu_processes(synth_root, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("XMEM_TRAJ_RUN_NAME", None)
    cmd = [
        str(BIN / "xmem-traj"),
        "train",
        "--dataroot",
        str(synth_root),
        "--cache-dir",
        str(tmp_path / "c"),
        "--run-dir",
        str(tmp_path / "runs"),
        "--name",
        "ddp",
        "--image-height",
        "64",
        "--image-width",
        "128",
        "--features",
        "hidden_mean,geometry",
        "--epochs",
        "1",
        "--hidden",
        "16",
        "--devices",
        "2",
        "--strategy",
        "ddp",
        "--no-progress",
        "--methods",
        "xmem",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "[xmem] Epoch 0: ADE" in proc.stdout
    assert "XMem + history (ours)" in proc.stdout
    run = tmp_path / "runs" / "ddp"
    assert RunLayout(run).checkpoint("xmem", 0).exists() and (run / "eval.json").exists()
    entries = list((tmp_path / "c" / "features").iterdir())
    assert entries and not any(p.name.endswith(".shards") for p in entries)  # shards merged


@pytest.mark.parametrize("command", ["", "synth", "train", "eval", "predict", "viz"])
def test_every_command_has_help(command):
    args = [str(BIN / "xmem-traj")] + ([command] if command else []) + ["--help"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "usage:" in proc.stdout


def test_finetuning_xmem_parts_trains_online(synth_root, tmp_path):
    cfg = tiny_config(
        synth_root,
        tmp_path,
        finetune_xmem="value_encoder.hidden_reinforce",
        max_steps=2,
        epochs=1,
        methods="xmem",
        batch_size=8,
        name="ft",
        map=False,
    )  # (and a head without the map)
    run = run_training(cfg)
    ckpt = torch.load(RunLayout(run).checkpoint("xmem", 0), map_location="cpu", weights_only=True)
    key = "model.backbone.network.value_encoder.hidden_reinforce.transform.weight"
    from xmem_traj.xmem import load_xmem

    start = load_xmem(None).state_dict()["value_encoder.hidden_reinforce.transform.weight"]
    assert not torch.equal(ckpt["state_dict"][key], start)  # fine-tuned
    frozen = "model.backbone.network.key_encoder.conv1.weight"
    assert torch.equal(
        ckpt["state_dict"][frozen], load_xmem(None).state_dict()["key_encoder.conv1.weight"]
    )
    data = prepare(cfg, roles=("val",))
    model = load_predictor(RunLayout(run).checkpoint("xmem", 0), data.context.backbone)
    assert model.model.backbone is not None


def test_finetuning_keeps_the_cue_loss_on_xmems_own_features(synth_root, tmp_path):
    """Online (fine-tuned) targets carry the cue labels, and the auxiliary loss reads the cues
    off the features XMem computes in the step (the batch carries no cached features)."""
    from xmem_traj.traj.datamodules import method_slots, model_spec
    from xmem_traj.traj.predictor import TrajectoryPredictor
    from xmem_traj.traj.targets import TargetTensors

    cfg = tiny_config(
        synth_root,
        tmp_path,
        finetune_xmem="value_encoder.hidden_reinforce",
        methods="xmem",
        cue_loss=1.0,
    )
    data = prepare(cfg, roles=("train",))
    batch = TargetTensors(data.train, method_slots(data, "xmem", "train")).batch(range(4))
    assert {"cue_labels", "cue_labels_valid", "frames", "init_masks"} <= set(batch.extras)
    assert "xmem" not in batch.extras
    spec = model_spec(data, "xmem")
    model = TrajectoryPredictor(
        spec=spec.to_dict(), lr=1e-3, weight_decay=0.0, epochs=1, seed=0, backbone=spec.backbone
    )
    read = []
    model.log = lambda *a, **kw: None
    head = model.model.head
    head.frame.register_forward_hook(lambda module, args, out: read.append(args[0]))
    model.training_step(batch, 0).backward()
    assert model.epoch_terms.pop()["cue_loss"] > 0
    assert len(read) == 1 and read[0].abs().sum() > 0
    grads = [p.grad for n, p in model.model.backbone.network.named_parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)


def test_feature_drop_hides_whole_targets_in_training_only():
    """--feature-drop: in training a drawn share of targets is predicted exactly as if it had no
    valid feature frame; in eval every target keeps its features."""
    from xmem_traj.traj.head import TrajectoryHead

    torch.manual_seed(0)
    head = TrajectoryHead(
        6,
        kind="gru",
        hidden=8,
        num_modes=2,
        past_steps=4,
        future_steps=3,
        dropout=0.0,
        feature_drop=0.5,
    )
    feats, valid = torch.randn(64, 5, 6), torch.ones(64, 5, dtype=torch.bool)
    past, past_valid = torch.randn(64, 4, 2), torch.ones(64, 4, dtype=torch.bool)
    blind = head(feats, torch.zeros_like(valid), past, past_valid)[0]
    torch.manual_seed(1)
    keep = torch.rand(64, 1) >= 0.5  # the draw the head makes after this seed
    torch.manual_seed(1)
    trained = head(feats, valid, past, past_valid)[0]
    dropped = ~keep[:, 0]
    assert 0 < dropped.sum() < 64
    assert torch.equal(trained[dropped], blind[dropped])
    assert not torch.allclose(trained[~dropped], blind[~dropped])
    head.eval()
    seen = head(feats, valid, past, past_valid)[0]
    head.feature_drop = 0.0
    assert torch.equal(seen, head(feats, valid, past, past_valid)[0])
    assert not torch.allclose(seen, blind)


def test_cv_mode_is_the_roll_out_itself():
    """--cv-mode: mode 0 is the constant-velocity roll-out, uncorrected, whatever the inputs;
    the other modes stay learned. Without the roll-out there is nothing to keep: an error."""
    from xmem_traj.errors import ConfigError
    from xmem_traj.traj.head import TrajectoryHead, constant_velocity, kinematics

    torch.manual_seed(0)
    kw = dict(kind="gru", hidden=8, num_modes=3, past_steps=4, future_steps=6, dropout=0.0)
    head = TrajectoryHead(6, cv_mode=True, **kw)
    feats, valid = torch.randn(16, 5, 6), torch.ones(16, 5, dtype=torch.bool)
    past = torch.cumsum(torch.rand(16, 4, 2), 1) - 3.0
    past_valid = torch.ones(16, 4, dtype=torch.bool)
    traj, logits = head(feats, valid, past, past_valid)
    roll_out = constant_velocity(kinematics(past, past_valid), 6)
    assert torch.equal(traj[:, 0], roll_out)
    assert not torch.allclose(traj[:, 1], roll_out) and logits.shape == (16, 3)
    with pytest.raises(ValueError, match="cv_mode"):
        TrajectoryHead(6, cv_mode=True, rollout=False, **kw)
    with pytest.raises(ConfigError, match="cv_mode"):
        TrainConfig.of(cv_mode=True, rollout=False)


def test_cue_vision_reads_xmem_only_through_the_cue_readout():
    """--vision cues: the frames reach the trajectory only through the cue readout, so features
    with the same readout give the same prediction; the map raster is read beside them."""
    from xmem_traj.traj.head import TrajectoryHead

    torch.manual_seed(0)
    kw = dict(
        kind="gru",
        hidden=8,
        num_modes=2,
        past_steps=4,
        future_steps=3,
        dropout=0.0,
        n_cues=6,
        map_shape=(32, 24),
    )
    cues, features = (
        TrajectoryHead(12, vision="cues", **kw).eval(),
        TrajectoryHead(12, vision="features", **kw).eval(),
    )
    f1, f2 = torch.randn(16, 5, 12), torch.randn(16, 5, 12)
    valid, past, past_valid = (
        torch.ones(16, 5, dtype=torch.bool),
        torch.randn(16, 4, 2),
        torch.ones(16, 4, dtype=torch.bool),
    )
    maps = torch.rand(16, 32, 24)
    with torch.no_grad():
        assert not torch.allclose(
            cues(f1, valid, past, past_valid, maps)[0], cues(f2, valid, past, past_valid, maps)[0]
        )
        cues.cue_readout.weight.zero_()  # the readout no longer depends on the features
        assert torch.allclose(
            cues(f1, valid, past, past_valid, maps)[0], cues(f2, valid, past, past_valid, maps)[0]
        )
        assert not torch.allclose(
            cues(f1, valid, past, past_valid, maps)[0],
            cues(f1, valid, past, past_valid, torch.rand(16, 32, 24))[0],
        )
        features.cue_readout.weight.zero_()  # reading the projection itself: still depends on them
        assert not torch.allclose(
            features(f1, valid, past, past_valid, maps)[0],
            features(f2, valid, past, past_valid, maps)[0],
        )
