"""Trajectory heads (the seed's "small GRU/MLP head"): per-frame XMem features plus the agent's
past track → K future trajectories in the agent frame and their mode logits.

`feature_dim = 0` gives the history-only model: the same head without vision, the ablation
that shows what XMem adds.
"""
from __future__ import annotations

import torch
from torch import nn

OUTPUT_SCALE = 10.0  # the head predicts in units of 10 m


class TrajectoryHead(nn.Module):
    """Past track (P steps) and per-frame features (C wide, 0 = none) → K modes of F steps."""

    def __init__(self, feature_dim: int, *, kind: str, hidden: int, num_modes: int,
                 past_steps: int, future_steps: int, dropout: float):
        super().__init__()
        if kind not in ("gru", "mlp"):
            raise ValueError(f"head kind must be 'gru' or 'mlp', got {kind!r}")
        self.kind, self.feature_dim, self.num_modes = kind, feature_dim, num_modes
        self.future_steps = future_steps
        self.past = nn.Sequential(nn.Linear(past_steps * 3, hidden), nn.ReLU(),
                                  nn.Linear(hidden, hidden), nn.ReLU())
        vision_out = 0
        if feature_dim > 0:
            self.frame = nn.Sequential(nn.LayerNorm(feature_dim), nn.Dropout(dropout),
                                       nn.Linear(feature_dim, hidden), nn.ReLU(), nn.Dropout(dropout))
            if kind == "gru":
                self.temporal = nn.GRU(hidden + 1, hidden, batch_first=True)
                vision_out = hidden
            else:
                vision_out = 2 * hidden  # masked mean over frames + the newest valid frame
        self.out = nn.Sequential(nn.Linear(hidden + vision_out, 2 * hidden), nn.ReLU(),
                                 nn.Linear(2 * hidden, num_modes * (future_steps * 2 + 1)))

    def forward(self, features: torch.Tensor | None, feature_valid: torch.Tensor | None,
                past: torch.Tensor, past_valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """features (B, T, C), feature_valid (B, T), past (B, P, 2) oldest first in the agent
        frame, past_valid (B, P) → trajectories (B, K, F, 2) agent frame, logits (B, K)."""
        pv = past_valid.to(past.dtype)[..., None]
        h = [self.past(torch.cat([past * pv / OUTPUT_SCALE, pv], -1).flatten(1))]
        if self.feature_dim > 0:
            fv = feature_valid.to(features.dtype)[..., None]
            x = self.frame(features) * fv
            if self.kind == "gru":
                _, last = self.temporal(torch.cat([x, fv], -1))
                h.append(last[0])
            else:
                mean = x.sum(1) / fv.sum(1).clamp_min(1)
                newest = (feature_valid.long().cumsum(1).argmax(1))
                h += [mean, x[torch.arange(x.shape[0]), newest]]
        y = self.out(torch.cat(h, -1)).view(-1, self.num_modes, self.future_steps * 2 + 1)
        traj = y[..., :-1].reshape(-1, self.num_modes, self.future_steps, 2) * OUTPUT_SCALE
        return traj, y[..., -1]
