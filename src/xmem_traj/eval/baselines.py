"""The devkit's physics baselines (ConstantVelocityHeading, PhysicsOracle), run on our targets
so that they go through exactly the same evaluation as the learned models."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from nuscenes.prediction import PredictHelper
from nuscenes.prediction.models.physics import ConstantVelocityHeading, PhysicsOracle

BASELINES = {"ConstantVelocityHeading": ConstantVelocityHeading, "PhysicsOracle": PhysicsOracle}


def run_baseline(
    name: str, helper: PredictHelper, tokens: Sequence[tuple[str, str]], seconds: float = 6.0
) -> tuple[np.ndarray, np.ndarray]:
    """(instance, sample) pairs → predictions (N, 1, T, 2) in the global frame, probs (N, 1)."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose from {sorted(BASELINES)}")
    model = BASELINES[name](seconds, helper)
    preds, probs = [], []
    for inst, samp in tokens:
        p = model(f"{inst}_{samp}")
        preds.append(p.prediction)
        probs.append(p.probabilities)
    return np.stack(preds).astype(np.float32), np.stack(probs).astype(np.float32)
