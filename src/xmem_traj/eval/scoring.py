"""Scoring a run on its prepared val split: each trained method (every seed's model) and the
devkit's baselines (ConstantVelocityHeading, PhysicsOracle) on the same targets, through the
same metrics (k = 1, 5, 10 and OffRoadRate), in the global frame, per target; the report
(eval/report.py) turns these into tables with intervals. Also the devkit Prediction JSON for
compute_metrics."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import torch
from nuscenes.eval.prediction.data_classes import Prediction
from nuscenes.prediction import PredictHelper

from ..config_groups import DECODING_OPTIONS
from ..data.agent_frame import local_to_global
from ..errors import RunError
from ..methods import METHODS
from ..runs import RunLayout
from ..traj.datamodules import method_slots, model_spec
from ..traj.metrics import per_agent_metrics
from ..traj.models import ModelSpec
from ..traj.predictor import TrajectoryPredictor
from ..traj.prepare import PreparedData
from ..traj.targets import TargetTensors
from .baselines import BASELINES, run_baseline
from .offroad import off_road_rate
from .report import summarize
from .road_snap import RoadSnap

log = logging.getLogger(__name__)

KS = (1, 5, 10)


def load_predictor(
    path: str | Path, backbone=None, *, expected: dict | None = None
) -> TrajectoryPredictor:
    """A trained predictor from a Lightning checkpoint, read with weights_only=True. A run that
    fine-tuned XMem needs its backbone (the checkpoint then holds XMem's weights too).
    `expected`: the model spec the run's config implies (ModelSpec.to_dict()); a checkpoint
    built otherwise is a RunError naming the first difference."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RunError(
            f"checkpoint {path} cannot be read ({first}); it may be truncated, or "
            "not a checkpoint this project wrote"
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise RunError(f"{path} is not a checkpoint of a trained predictor")
    hparams = dict(ckpt["hyper_parameters"])
    if expected is not None:
        check_spec(path, hparams.get("spec", {}), expected)
        hparams["spec"] = with_decoding(hparams["spec"], expected)
    finetuned = any(k.startswith("model.backbone.") for k in ckpt["state_dict"])
    if finetuned and backbone is None:
        raise ValueError(f"{path} fine-tuned XMem: pass the run's backbone to load it")
    model = TrajectoryPredictor(**hparams, backbone=backbone if finetuned else None)
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def check_spec(path, found: dict, expected: dict) -> None:
    """RunError unless the checkpoint's model spec is the one the run's config implies (its
    architecture: method, options, track lengths, the shapes of the inputs it reads)."""
    for key in ("method", "inputs", "past_steps", "future_steps"):
        if found.get(key) != expected[key]:
            _mismatch(path, key, found.get(key), expected[key])
    ignored = not_read_by(expected["method"]) | set(DECODING_OPTIONS)
    found = ModelSpec.with_defaults(found)  # options newer than the checkpoint: as it was made
    for group in ("model", "experimental"):
        for key, value in expected[group].items():
            if key in ignored:
                continue
            if found[group].get(key) != value:
                _mismatch(path, key, found[group].get(key), value)
    for slot, shape in expected["shapes"].items():
        if list(found.get("shapes", {}).get(slot, [])) != list(shape):
            _mismatch(path, f"input {slot}", found.get("shapes", {}).get(slot), list(shape))


def with_decoding(found: dict, expected: dict) -> dict:
    """A checkpoint's spec with the run's decoding options (DECODING_OPTIONS): they change no
    trained weight, so the run's config (or an eval override) decides them."""
    model = {**found.get("model", {}), **{k: expected["model"][k] for k in DECODING_OPTIONS}}
    return {**found, "model": model}


def not_read_by(method: str) -> set[str]:
    """Config fields a model of `method` does not depend on: the run's method list and the
    options only other methods read (Method.options; a resume may add those methods and set
    them, runs.adds_methods)."""
    others = {o for m in METHODS.values() for o in m.options}
    return {"methods"} | (others - set(METHODS[method].options))


def _mismatch(path, key: str, found, expected) -> None:
    raise RunError(
        f"{path} does not belong to this run: its model has {key} = {found!r}, the "
        f"run's config.json says {expected!r}"
    )


def val_tensors(data: PreparedData, method: str) -> TargetTensors:
    """The val targets with the slots the method's model reads."""
    return TargetTensors(data.val, method_slots(data, method, "val"))


def road_snap(data: PreparedData) -> RoadSnap | None:
    """The run's decoding step that keeps modes on the road, for its val targets (None where
    --road-snap is 0 or the dataroot has no map expansion)."""
    radius = data.cfg.model.road_snap
    if radius <= 0:
        return None
    locations = data.val.targets.locations
    maps = data.context.drivable_maps(locations)
    if maps is None:
        log.info("no map expansion: predicted modes are not kept on the road (--road-snap)")
        return None
    return RoadSnap(maps, locations, data.val.arrays["translation"], radius_m=radius)


@torch.no_grad()
def predict(
    model: TrajectoryPredictor,
    data: TargetTensors,
    batch_size: int = 256,
    *,
    snap: RoadSnap | None = None,
):
    """→ global-frame predictions (N, K, F, 2), probabilities (N, K), ground truth (N, F, 2),
    gt validity (N, F). `snap`: the decoding step that keeps modes on the road (road_snap),
    for the same targets in the same order."""
    preds, probs, gts, valid = [], [], [], []
    for start in range(0, len(data), batch_size):
        batch = data.batch(list(range(start, min(len(data), start + batch_size))))
        p, pr = model.predict_global(batch)
        preds.append(p)
        probs.append(pr)
        gts.append(local_to_global(batch.traj, batch.translation, batch.rotation))
        valid.append(batch.future_valid)
    pred = torch.cat(preds)
    if snap is not None:
        pred = torch.from_numpy(snap(pred.cpu().numpy())).to(pred)
    return pred, torch.cat(probs), torch.cat(gts), torch.cat(valid)


def score(pred, probs, gt, gt_valid) -> dict[str, float]:
    """Means of the challenge metrics (k = 1, 5, 10), as the devkit's RowMean gives them."""
    return {
        k: float(v.mean())
        for k, v in per_agent_metrics(
            torch.as_tensor(pred),
            torch.as_tensor(probs),
            torch.as_tensor(gt),
            torch.as_tensor(gt_valid),
            KS,
        ).items()
    }


class Scorer:
    """Per-target metrics of global predictions on the val targets (OffRoadRate where the
    map expansion is there)."""

    def __init__(self, data: PreparedData):
        arrays = {
            k: torch.from_numpy(data.val.arrays[k])
            for k in ("traj", "translation", "rotation", "future_valid")
        }
        self.gt = local_to_global(arrays["traj"], arrays["translation"], arrays["rotation"])
        self.gt_valid = arrays["future_valid"]
        self.locations = data.val.targets.locations
        maps = data.context.drivable_maps(self.locations)
        self.masks = None if maps is None else maps.masks
        if self.masks is None:
            log.warning(
                "no map expansion (maps/expansion/*.json) in %s: OffRoadRate is not reported",
                data.source.dataroot,
            )

    def __call__(self, pred, probs) -> dict[str, np.ndarray]:
        out = {
            k: v.numpy()
            for k, v in per_agent_metrics(
                torch.as_tensor(pred), torch.as_tensor(probs), self.gt, self.gt_valid, KS
            ).items()
        }
        if self.masks is not None:
            out["OffRoadRate"] = off_road_rate(np.asarray(pred), self.locations, self.masks)
        return out


def score_method(
    layout: RunLayout, data: PreparedData, scorer: Scorer, method: str
) -> list[dict[str, np.ndarray]]:
    """Per-target metrics of each of the run's models of `method` (one dict per seed) on the
    val split. Raises RunError when the method has no checkpoint."""
    paths = layout.checkpoints(method)
    if not paths:
        raise RunError(
            f"{layout.root} has no checkpoint of method {method!r} "
            f"({layout.checkpoint(method, 0).relative_to(layout.root)})"
        )
    tensors = val_tensors(data, method)
    backbone = data.context.backbone
    expected = model_spec(data, method, "val").to_dict()
    snap = road_snap(data)
    return [
        scorer(*predict(load_predictor(p, backbone, expected=expected), tensors, snap=snap)[:2])
        for p in paths
    ]


def evaluate_run(layout: RunLayout, data: PreparedData) -> dict:
    """Every method of the run (mean over its seeds) and the devkit baselines on the val
    split → the summary (eval/report.py). Raises RunError when a method has no checkpoint."""
    scorer = Scorer(data)
    per_target: dict[str, dict[str, np.ndarray]] = {}  # label → metric → (S, N) or (N,)
    seeds: dict[str, int] = {}
    for name in data.methods:
        runs = score_method(layout, data, scorer, name)
        label = METHODS[name].label
        seeds[label] = len(runs)
        per_target[label] = {k: np.stack([run[k] for run in runs]) for k in runs[0]}
    tokens = [(r.instance_token, r.sample_token) for r in data.val.records]
    helper = PredictHelper(data.context.nusc)
    for name in BASELINES:
        per_target[name] = scorer(
            *run_baseline(name, helper, tokens, data.val.dataset.targets.future_s)
        )
    return summarize(data, per_target, seeds)


def prediction_json(
    model: TrajectoryPredictor,
    tensors: TargetTensors,
    records,
    *,
    snap: RoadSnap | None = None,
) -> list[dict]:
    """Devkit Prediction records (global frame, ≤ 25 modes) ready for compute_metrics."""
    pred, probs, _, _ = predict(model, tensors, snap=snap)
    return [
        Prediction(
            r.instance_token, r.sample_token, p.astype(np.float64), pr.astype(np.float64)
        ).serialize()
        for r, p, pr in zip(records, pred.numpy(), probs.numpy())
    ]


__all__ = [
    "KS",
    "Scorer",
    "evaluate_run",
    "load_predictor",
    "predict",
    "prediction_json",
    "road_snap",
    "score",
    "score_method",
    "val_tensors",
]
