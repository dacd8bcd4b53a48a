"""Which of a model's modes is ranked first. The devkit's metrics rank modes by their
probabilities, and the k = 1 metrics (minADE_1, minFDE_1, MissRate_2_1) read only the first.

- "probability": the most probable mode first (the devkit's MTP and CoverNet as published).
- "risk": the mode that the model's own mixture expects to end nearest the truth first: the
  least expected final displacement  r_i = Σ_j p_j ‖end_i − end_j‖  (the minimum-Bayes-risk
  choice for minFDE_1). Its probability swaps with the highest one, so the other modes keep
  their order and the probabilities their values. Where most of the mass sits on two nearby
  modes, the most probable of K well-separated modes is not the best single guess.

The ranking decides nothing in training (the loss reads the logits): it is a decoding option,
set by the run's config when a run is scored (eval, predict, compare may change it), whatever
a checkpoint was trained with.
"""

from __future__ import annotations

import torch

from ..config_groups import RANKINGS
from .metrics import devkit_order


def expected_final_displacement(traj: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """traj (B, K, F, 2), probs (B, K) → (B, K): each mode's final displacement from the
    others, weighted by their probabilities (metres, in the frame of traj)."""
    end = traj[:, :, -1]
    distance = torch.linalg.norm(end[:, :, None] - end[:, None], dim=-1)  # (B, K, K)
    return (distance * probs[:, None, :]).sum(-1)


def rank_modes(traj: torch.Tensor, probs: torch.Tensor, ranking: str) -> torch.Tensor:
    """traj (B, K, F, 2), probs (B, K) → probabilities (B, K) whose order puts first the mode
    that `ranking` (RANKINGS) chooses; on the input's device."""
    if ranking not in RANKINGS:
        raise ValueError(f"ranking must be one of {RANKINGS}, got {ranking!r}")
    if ranking == "probability" or probs.shape[-1] == 1:
        return probs
    chosen = expected_final_displacement(traj, probs).argmin(-1, keepdim=True)
    top = devkit_order(probs)[:, :1]  # the mode the devkit's metrics would read first
    out = probs.clone()
    out.scatter_(-1, chosen, probs.gather(-1, top))
    out.scatter_(-1, top, probs.gather(-1, chosen))
    return out


__all__ = ["RANKINGS", "expected_final_displacement", "rank_modes"]
