"""Evaluation of a run: the XMem model, its history-only ablation and the devkit baselines
(ConstantVelocityHeading, PhysicsOracle) on the same targets, through the same metrics, in
the global frame; and the devkit Prediction JSON for compute_metrics."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from nuscenes.eval.prediction.data_classes import Prediction

from ..config import TrainConfig
from .baselines import BASELINES, run_baseline
from .data import CachedTargets, TrajDataModule
from .geometry import local_to_global
from .lightning_module import TrajectoryModule, collate_traj
from .metrics import make_metrics


def load_module(path: str | Path, backbone=None) -> TrajectoryModule:
    """A trained predictor from a Lightning checkpoint, read with weights_only=True. A run that
    fine-tuned XMem needs its backbone (the checkpoint then holds XMem's weights too)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    finetuned = any(k.startswith("backbone.") for k in ckpt["state_dict"])
    if finetuned and backbone is None:
        raise ValueError(f"{path} fine-tuned XMem: pass the run's backbone to load it")
    model = TrajectoryModule(**dict(ckpt["hyper_parameters"]), backbone=backbone if finetuned else None)
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


@torch.no_grad()
def predict(model: TrajectoryModule, data: CachedTargets, batch_size: int = 64):
    """→ global-frame predictions (N, K, 12, 2), probabilities (N, K), ground truth (N, 12, 2),
    gt validity (N, 12)."""
    preds, probs, gts, valid = [], [], [], []
    for start in range(0, len(data), batch_size):
        batch = collate_traj([data[i] for i in range(start, min(len(data), start + batch_size))])
        p, pr = model.predict_global(batch)
        preds.append(p); probs.append(pr)
        gts.append(local_to_global(batch.traj, batch.translation, batch.rotation))
        valid.append(batch.future_valid)
    return torch.cat(preds), torch.cat(probs), torch.cat(gts), torch.cat(valid)


def score(pred, probs, gt, gt_valid) -> dict[str, float]:
    out = {}
    for name, metric in make_metrics(sync_on_compute=False).items():
        metric.update(torch.as_tensor(pred), torch.as_tensor(probs), torch.as_tensor(gt),
                      torch.as_tensor(gt_valid))
        out[name] = float(metric.compute())
    return out


def evaluate_run(run: str | Path, cfg: TrainConfig, dm: TrajDataModule, helper) -> dict[str, dict]:
    """Metrics per method on dm.val_set; also writes run/eval.json."""
    run = Path(run)
    dm.setup("validate")
    data, ds = dm.val_data, dm.val_set
    results: dict[str, dict] = {}
    gt = gt_valid = None
    models = {"XMem + history (ours)": run / "checkpoints" / "last.ckpt",
              "history-only (ablation)": run / "checkpoints" / "history_only" / "last.ckpt"}
    for label, path in models.items():
        if path.exists():
            model = load_module(path, dm.backbone if dm.online else None)
            if label.startswith("XMem") and model.hparams.history_only:
                label = "history-only (main model)"
            pred, probs, gt, gt_valid = predict(model, data)
            results[label] = score(pred, probs, gt, gt_valid)
    if gt is None:
        gt = local_to_global(data.traj, data.translation, data.rotation)
        gt_valid = data.future_valid
    tokens = [(r.instance_token, r.sample_token) for r in ds.records]
    for name in BASELINES:
        pred, probs = run_baseline(name, helper, tokens, ds.future_s)
        results[name] = score(pred, probs, gt, gt_valid)
    summary = {"split": ds.split, "version": ds.version, "targets": len(ds),
               "dataroot": ds.dataroot, "metrics": results}
    (run / "eval.json").write_text(json.dumps(summary, indent=1))
    return summary


def format_table(summary: dict, names=("MinADEK_1", "MinFDEK_1", "MissRateTopK_2_1",
                                       "MinADEK_5", "MinFDEK_5", "MissRateTopK_2_5")) -> str:
    lines = [f"{summary['version']} {summary['split']}: {summary['targets']} targets "
             "(devkit metric names, global frame, metres)", "",
             "| method | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for method, m in summary["metrics"].items():
        lines.append(f"| {method} | " + " | ".join(f"{m[n]:.3f}" for n in names) + " |")
    return "\n".join(lines)


def prediction_json(model: TrajectoryModule, data: CachedTargets, records) -> list[dict]:
    """Devkit Prediction records (global frame, ≤ 25 modes) ready for compute_metrics."""
    pred, probs, _, _ = predict(model, data)
    out = []
    for r, p, pr in zip(records, pred.numpy(), probs.numpy()):
        out.append(Prediction(r.instance_token, r.sample_token, p.astype(np.float64),
                              pr.astype(np.float64)).serialize())
    return out
