"""Evaluation of a run: each trained method and the devkit baselines (ConstantVelocityHeading,
PhysicsOracle) on the same targets, through the same metrics (k = 1, 5, 10 and OffRoadRate),
in the global frame; by subset (with / without a past, and on the synthetic world by what lies
ahead), with 95 % intervals from a cluster bootstrap over agents and paired comparisons.
Also the devkit Prediction JSON for compute_metrics."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from nuscenes.eval.prediction.data_classes import Prediction
from nuscenes.prediction import PredictHelper

from ..data.agent_frame import local_to_global
from ..errors import RunError
from ..methods import METHODS
from ..runs import RunLayout
from ..synth.cues import CLASSES
from ..traj.batch import collate_traj
from ..traj.datamodules import TrajDataModule
from ..traj.metrics import per_agent_metrics
from ..traj.predictor import TrajectoryPredictor
from ..traj.targets import CachedTargets
from .baselines import BASELINES, run_baseline
from .bootstrap import ClusterBootstrap
from .offroad import off_road_rate

log = logging.getLogger(__name__)

KS = (1, 5, 10)
METRICS = tuple(f"{m}_{k}" for k in KS for m in ("MinADEK", "MinFDEK", "MissRateTopK_2")) + ("OffRoadRate",)
SUBSETS = ("all", "with_past", "no_past") + CLASSES
SUBSET_TITLES = {"all": "all targets", "with_past": "targets with a past (>= 1 past annotation)",
                 "no_past": "targets without a past (a scene's first sample)",
                 "foretold": "with a past, change foretold by a cue seen in the window",
                 "no_cue": "with a past, change ahead with no cue seen",
                 "under_way": "with a past, change already under way",
                 "no_change": "with a past, no change within the horizon"}


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
def predict(model: TrajectoryPredictor, data: CachedTargets, batch_size: int = 256):
    """→ global-frame predictions (N, K, F, 2), probabilities (N, K), ground truth (N, F, 2),
    gt validity (N, F)."""
    preds, probs, gts, valid = [], [], [], []
    for start in range(0, len(data), batch_size):
        idx = list(range(start, min(len(data), start + batch_size)))
        batch = data.__getitems__(idx) if data.__getitems__ else collate_traj([data[i] for i in idx])
        p, pr = model.predict_global(batch)
        preds.append(p); probs.append(pr)
        gts.append(local_to_global(batch.traj, batch.translation, batch.rotation))
        valid.append(batch.future_valid)
    return torch.cat(preds), torch.cat(probs), torch.cat(gts), torch.cat(valid)


def score(pred, probs, gt, gt_valid) -> dict[str, float]:
    """Means of the challenge metrics (k = 1, 5, 10), as the devkit's RowMean gives them."""
    return {k: float(v.mean()) for k, v in per_agent_metrics(
        torch.as_tensor(pred), torch.as_tensor(probs), torch.as_tensor(gt), torch.as_tensor(gt_valid), KS).items()}


class Scorer:
    """Per-target metrics of global predictions on one split's targets (OffRoadRate where the
    map expansion is there)."""

    def __init__(self, dm: TrajDataModule):
        data = dm.targets("val", "none")
        self.gt = local_to_global(data.traj, data.translation, data.rotation)
        self.gt_valid = data.future_valid
        self.locations = dm.locations("val")
        maps = dm.drivable_maps()
        self.masks = None if maps is None else maps.masks
        if self.masks is None:
            log.warning("no map expansion (maps/expansion/*.json) in %s: OffRoadRate is not reported",
                        dm.source.dataroot)

    def __call__(self, pred, probs) -> dict[str, np.ndarray]:
        out = {k: v.numpy() for k, v in per_agent_metrics(
            torch.as_tensor(pred), torch.as_tensor(probs), self.gt, self.gt_valid, KS).items()}
        if self.masks is not None:
            out["OffRoadRate"] = off_road_rate(np.asarray(pred), self.locations, self.masks)
        return out


def subset_masks(dm: TrajDataModule) -> dict[str, np.ndarray]:
    """Boolean masks over the val targets: with / without a past, and (on the synthetic world)
    by what lies ahead, among those with a past."""
    records = dm.val_set.records
    with_past = np.array([len(r.past) > 0 for r in records])
    out = {"all": np.ones(len(records), bool), "with_past": with_past, "no_past": ~with_past}
    if dm.cues is not None:
        classes = np.array([dm.cues.target_class(r) for r in records])
        out.update({c: with_past & (classes == c) for c in CLASSES})
    return out


def score_method(layout: RunLayout, dm: TrajDataModule, scorer: Scorer, method: str
                 ) -> list[dict[str, np.ndarray]]:
    """Per-target metrics of each of the run's heads of `method` (one dict per seed) on
    dm.val_set. Raises RunError when the method has no checkpoint."""
    paths = layout.checkpoints(method)
    if not paths:
        raise RunError(f"{layout.root} has no checkpoint of method {method!r} "
                       f"({layout.checkpoint(method, 0).relative_to(layout.root)})")
    data = dm.targets("val", METHODS[method].inputs)
    return [scorer(*predict(load_predictor(p, dm.finetuned_backbone), data)[:2]) for p in paths]


def evaluate_run(layout: RunLayout, dm: TrajDataModule, methods) -> dict:
    """Every method (mean over its seeds) and the devkit baselines on dm.val_set, by subset,
    with 95 % intervals over agents; paired comparisons on the targets with a past. Raises
    RunError when a method has no checkpoint."""
    dm.setup("validate")
    scorer = Scorer(dm)
    per_target: dict[str, dict[str, np.ndarray]] = {}
    seed_runs: dict[str, list[dict[str, np.ndarray]]] = {}
    for name in methods:
        runs = score_method(layout, dm, scorer, name)
        label = METHODS[name].label
        seed_runs[label] = runs
        per_target[label] = {k: np.mean([run[k] for run in runs], 0) for k in runs[0]}
    tokens = [(r.instance_token, r.sample_token) for r in dm.val_set.records]
    helper = PredictHelper(dm.nusc)
    for name in BASELINES:
        per_target[name] = scorer(*run_baseline(name, helper, tokens, dm.val_set.targets.future_s))
    return summarize(dm, per_target, seed_runs, methods)


def summarize(dm: TrajDataModule, per_target: dict, seed_runs: dict, methods) -> dict:
    """The JSON summary: per subset and method, each metric's mean with its interval over
    agents (learned methods: per-target values averaged over seeds first), and the spread of
    minFDE_1 over seeds; the paired comparisons."""
    records = dm.val_set.records
    boot = ClusterBootstrap([r.instance_token for r in records])
    masks = subset_masks(dm)
    agents = np.array([r.instance_token for r in records])
    summary = {"split": dm.val_set.split, "version": dm.val_set.targets.version,
               "dataroot": dm.source.dataroot, "targets": len(records), "agents": len(set(agents)),
               "subsets": {s: {"targets": int(m.sum()), "agents": int(len(set(agents[m])))}
                           for s, m in masks.items()},
               "seeds": {label: len(runs) for label, runs in seed_runs.items()},
               "metrics": {}, "comparisons": {}}
    for subset, mask in masks.items():
        if not mask.any():
            continue
        block = summary["metrics"][subset] = {}
        for label, values in per_target.items():
            block[label] = {k: boot.mean(v, mask).as_list() for k, v in values.items()}
            runs = seed_runs.get(label, [])
            if len(runs) > 1:
                block[label]["MinFDEK_1_seed_sd"] = float(np.std([r["MinFDEK_1"][mask].mean() for r in runs]))
    summary["comparisons"] = compare(boot, per_target, masks["with_past"], methods)
    return summary


def compare(boot: ClusterBootstrap, per_target: dict, mask: np.ndarray, methods) -> dict:
    """Paired comparisons on the targets with a past (relative gains, lower is better)."""
    label = {m: METHODS[m].label for m in methods}
    out = {}
    xmem, hist, oracle = label.get("xmem"), label.get("history_only"), label.get("cue_oracle")
    cvh = "ConstantVelocityHeading"
    for a, b in ((xmem, hist), (xmem, cvh), (hist, cvh), (oracle, hist), (label.get("intent_oracle"), hist)):
        if a is None or b is None:
            continue
        out[f"{a} vs {b}"] = {k: boot.relative_gain(per_target[a][k], per_target[b][k], mask).as_list()
                              for k in ("MinADEK_1", "MinFDEK_1", "MissRateTopK_2_1", "MinADEK_5",
                                        "MinFDEK_5", "MissRateTopK_2_5")}
    if xmem and hist and oracle:
        out["share of the cue oracle's gain captured by XMem"] = {
            k: boot.ratio_of_differences(per_target[xmem][k], per_target[hist][k], per_target[oracle][k],
                                         mask).as_list() for k in ("MinADEK_1", "MinFDEK_1")}
    return out


def format_report(summary: dict, names=("MinADEK_1", "MinFDEK_1", "MissRateTopK_2_1", "MinADEK_5",
                                        "MinFDEK_5", "MissRateTopK_2_5", "MinADEK_10", "MinFDEK_10",
                                        "MissRateTopK_2_10", "OffRoadRate")) -> str:
    """Markdown tables: value [95 % interval over agents] per subset, then the comparisons."""
    seeds = summary.get("seeds", {})
    lines = [f"{summary['version']} {summary['split']}: {summary['targets']} targets of "
             f"{summary['agents']} agents (devkit metric names, global frame, metres; learned "
             f"models: mean over their seeds; [95 % interval, cluster bootstrap over agents])"]
    for subset, block in summary["metrics"].items():
        info = summary["subsets"][subset]
        shown = [n for n in names if n in next(iter(block.values()))]
        if subset in CLASSES:  # the classes: a compact table
            shown = ["MinADEK_1", "MinFDEK_1", "MissRateTopK_2_1", "MinFDEK_5"]
        lines += ["", f"**{SUBSET_TITLES[subset]}**: {info['targets']} targets, {info['agents']} agents", "",
                  "| method | seeds | " + " | ".join(shown) + " |", "|---|---|" + "---|" * len(shown)]
        for label, m in block.items():
            cells = [f"{m[n][0]:.3f} [{m[n][1]:.2f}, {m[n][2]:.2f}]" for n in shown]
            sd = f" (minFDE_1 sd over seeds {m['MinFDEK_1_seed_sd']:.3f})" if "MinFDEK_1_seed_sd" in m else ""
            lines.append(f"| {label}{sd} | {seeds.get(label, '—')} | " + " | ".join(cells) + " |")
    if summary["comparisons"]:
        lines += ["", "**paired, targets with a past** (relative gain of the first over the second, "
                      "lower is better; [95 % interval over agents])", ""]
        for name, values in summary["comparisons"].items():
            cells = ", ".join(f"{k} {100 * v[0]:+.1f}% [{100 * v[1]:+.1f}, {100 * v[2]:+.1f}]"
                              for k, v in values.items())
            lines.append(f"- {name}: {cells}")
    return "\n".join(lines)


def prediction_json(model: TrajectoryPredictor, data: CachedTargets, records) -> list[dict]:
    """Devkit Prediction records (global frame, ≤ 25 modes) ready for compute_metrics."""
    pred, probs, _, _ = predict(model, data)
    out = []
    for r, p, pr in zip(records, pred.numpy(), probs.numpy()):
        out.append(Prediction(r.instance_token, r.sample_token, p.astype(np.float64),
                              pr.astype(np.float64)).serialize())
    return out
