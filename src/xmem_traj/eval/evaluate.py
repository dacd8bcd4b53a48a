"""Evaluation of a run: each trained method and the devkit baselines (ConstantVelocityHeading,
PhysicsOracle) on the same targets, through the same metrics, in the global frame; and the
devkit Prediction JSON for compute_metrics."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from nuscenes.eval.prediction.data_classes import Prediction
from nuscenes.prediction import PredictHelper

from ..data.agent_frame import local_to_global
from ..errors import RunError
from ..methods import METHODS
from ..runs import RunLayout
from ..traj.batch import collate_traj
from ..traj.datamodules import TrajDataModule
from ..traj.predictor import TrajectoryPredictor
from ..traj.targets import CachedTargets
from .baselines import BASELINES, run_baseline
from ..traj.metrics import make_metrics


def load_predictor(path: str | Path, backbone=None) -> TrajectoryPredictor:
    """A trained predictor from a Lightning checkpoint, read with weights_only=True. A run that
    fine-tuned XMem needs its backbone (the checkpoint then holds XMem's weights too)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise RunError(f"checkpoint {path} cannot be read ({err}); it may be truncated") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise RunError(f"{path} is not a checkpoint of a trained predictor")
    finetuned = any(k.startswith("backbone.") for k in ckpt["state_dict"])
    if finetuned and backbone is None:
        raise ValueError(f"{path} fine-tuned XMem: pass the run's backbone to load it")
    model = TrajectoryPredictor(**dict(ckpt["hyper_parameters"]), backbone=backbone if finetuned else None)
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


@torch.no_grad()
def predict(model: TrajectoryPredictor, data: CachedTargets, batch_size: int = 64):
    """→ global-frame predictions (N, K, F, 2), probabilities (N, K), ground truth (N, F, 2),
    gt validity (N, F)."""
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


def evaluate_run(layout: RunLayout, dm: TrajDataModule, methods) -> dict[str, dict]:
    """Metrics per method on dm.val_set (mean over the seeds a method was trained with, and
    per seed) beside the devkit baselines. Raises RunError when a method has no checkpoint."""
    dm.setup("validate")
    data, ds = dm.val_data, dm.val_set
    gt = local_to_global(data.traj, data.translation, data.rotation)
    gt_valid = data.future_valid
    results: dict[str, dict] = {}
    per_seed: dict[str, list[dict]] = {}
    for name in methods:
        paths = layout.checkpoints(name)
        if not paths:
            raise RunError(f"{layout.root} has no checkpoint of method {name!r} "
                           f"({layout.checkpoint(name, 0).relative_to(layout.root)})")
        label = METHODS[name].label
        scores = [score(*predict(load_predictor(p, dm.finetuned_backbone), data)) for p in paths]
        per_seed[label] = scores
        results[label] = {k: float(np.mean([s[k] for s in scores])) for k in scores[0]}
        if len(scores) > 1:
            results[label].update({f"{k}_sd": float(np.std([s[k] for s in scores])) for k in scores[0]})
    tokens = [(r.instance_token, r.sample_token) for r in ds.records]
    helper = PredictHelper(dm.nusc)
    for name in BASELINES:
        pred, probs = run_baseline(name, helper, tokens, ds.targets.future_s)
        results[name] = score(pred, probs, gt, gt_valid)
    return {"split": ds.split, "version": ds.targets.version, "targets": len(ds),
            "dataroot": ds.targets.dataroot, "metrics": results, "per_seed": per_seed,
            "seeds": {k: len(v) for k, v in per_seed.items()}}


def format_table(summary: dict, names=("MinADEK_1", "MinFDEK_1", "MissRateTopK_2_1",
                                       "MinADEK_5", "MinFDEK_5", "MissRateTopK_2_5")) -> str:
    seeds = summary.get("seeds", {})
    note = ", learned models: mean ± sd over seeds" if any(n > 1 for n in seeds.values()) else ""
    lines = [f"{summary['version']} {summary['split']}: {summary['targets']} targets "
             f"(devkit metric names, global frame, metres{note})", "",
             "| method | seeds | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for method, m in summary["metrics"].items():
        cells = [f"{m[n]:.3f}" + (f" ± {m[n + '_sd']:.3f}" if n + "_sd" in m else "") for n in names]
        lines.append(f"| {method} | {seeds.get(method, '—')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def prediction_json(model: TrajectoryPredictor, data: CachedTargets, records) -> list[dict]:
    """Devkit Prediction records (global frame, ≤ 25 modes) ready for compute_metrics."""
    pred, probs, _, _ = predict(model, data)
    out = []
    for r, p, pr in zip(records, pred.numpy(), probs.numpy()):
        out.append(Prediction(r.instance_token, r.sample_token, p.astype(np.float64),
                              pr.astype(np.float64)).serialize())
    return out
