"""Trajectory heads (the seed's "small GRU/MLP head"): per-frame inputs (XMem features, the
world's true states for the diagnostic oracles, or none) plus the agent's past track and, with a
map shape, the map around it (the drivable area in its frame, data/maps.py) → K future
trajectories in the agent frame and their mode logits.

The head starts from what physics knows: the kinematics the devkit's physics models use
(speed, acceleration, yaw rate from the past annotations only) and, with `rollout`, the
constant-velocity-and-heading roll-out, to which it predicts corrections; without a past the
roll-out is standing still; with `cv_mode` one mode is that roll-out, uncorrected.
`feature_dim = 0` gives the history-only model.
"""

from __future__ import annotations

import torch
from torch import nn

OUTPUT_SCALE = 10.0  # the head predicts in units of 10 m
STEP_S = 0.5  # key-frame interval of the tracks (2 Hz)
KINEMATICS = 5  # speed, acceleration, yaw rate, lateral speed, has-past


def kinematics(past: torch.Tensor, past_valid: torch.Tensor) -> torch.Tensor:
    """past (B, P, 2) oldest first in the agent frame (current position at the origin, heading
    +y), past_valid (B, P) → (B, 5): speed (m/s, |displacement| / Δt to the last past point,
    as the devkit's ConstantVelocityHeading), acceleration (m/s², speed change over the last two
    intervals), yaw rate (rad/s, turn of the displacement over the last two intervals), lateral
    speed (m/s) and 1 where there is a past. Zero where the past is too short."""
    zero = past.new_zeros(past.shape[0])
    last, prev = past[:, -1], past[:, -2] if past.shape[1] > 1 else past[:, -1]
    v1, v2 = past_valid[:, -1], past_valid[:, -2] if past.shape[1] > 1 else past_valid[:, -1]
    d_now = -last  # displacement over the last interval
    d_before = last - prev
    speed = torch.where(v1, d_now.norm(dim=-1) / STEP_S, zero)
    lateral = torch.where(v1, d_now[:, 0] / STEP_S, zero)
    speed_before = torch.where(v1 & v2, d_before.norm(dim=-1) / STEP_S, speed)
    accel = torch.where(v1 & v2, (speed - speed_before) / STEP_S, zero)
    ang_now = torch.atan2(d_now[:, 0], d_now[:, 1])
    ang_before = torch.atan2(d_before[:, 0], d_before[:, 1])
    turn = torch.remainder(ang_now - ang_before + torch.pi, 2 * torch.pi) - torch.pi
    moving = (d_now.norm(dim=-1) > 0.2) & (d_before.norm(dim=-1) > 0.2)
    yaw_rate = torch.where(v1 & v2 & moving, turn / STEP_S, zero)
    return torch.stack([speed, accel, yaw_rate, lateral, v1.to(past.dtype)], -1)


def constant_velocity(kin: torch.Tensor, future_steps: int) -> torch.Tensor:
    """(B, 5) kinematics → (B, F, 2): the devkit's ConstantVelocityHeading in the agent frame
    (straight ahead along +y at the current speed)."""
    t = torch.arange(1, future_steps + 1, device=kin.device, dtype=kin.dtype) * STEP_S
    return torch.stack([torch.zeros_like(t).expand(kin.shape[0], -1), kin[:, :1] * t], -1)


def map_encoder(shape: tuple[int, int], width: int) -> nn.Module:
    """(B, 1, H, W) raster → (B, width): three stride-2 convolutions, then a projection."""
    cells = ((shape[0] + 7) // 8) * ((shape[1] + 7) // 8)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, 2, 1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, 2, 1),
        nn.ReLU(),
        nn.Conv2d(32, 32, 3, 2, 1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * cells, width),
        nn.ReLU(),
    )


def track_encoder(inputs: int, width: int) -> nn.Module:
    """(…, inputs) → (…, width): the two-layer MLP that reads a track (the past track with its
    kinematics; each neighbour's track, xy / 10 and validity per step, shared by them)."""
    return nn.Sequential(nn.Linear(inputs, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())


def pool_neighbours(
    encoder: nn.Module, tracks: torch.Tensor, valid: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """tracks (B, M, S, 2) in the agent frame, valid (B, M, S) → (B, width): the encoded
    neighbours' masked max (zeros without any neighbour)."""
    v = valid.to(dtype)[..., None]
    x = encoder(torch.cat([tracks.to(dtype) * v / OUTPUT_SCALE, v], -1).flatten(2))
    present = valid.any(-1)[..., None]
    pooled = x.masked_fill(~present, float("-inf")).amax(1)
    return torch.where(present.any(1), pooled, torch.zeros_like(pooled))


class TrajectoryHead(nn.Module):
    """Past track (P steps), per-frame inputs (C wide, 0 = none), the map raster (map_shape,
    None = no map) and the neighbours' tracks (neighbour_steps S per track, 0 = none) → K
    modes of F steps."""

    def __init__(
        self,
        feature_dim: int,
        *,
        kind: str,
        hidden: int,
        num_modes: int,
        past_steps: int,
        future_steps: int,
        dropout: float,
        rollout: bool = True,
        cv_mode: bool = False,
        n_cues: int = 0,
        feature_drop: float = 0.0,
        map_shape: tuple[int, int] | None = None,
        vision: str = "features",
        neighbour_steps: int = 0,
    ):
        super().__init__()
        if kind not in ("gru", "mlp"):
            raise ValueError(f"head kind must be 'gru' or 'mlp', got {kind!r}")
        if vision not in ("features", "cues") or (vision == "cues" and feature_dim and not n_cues):
            raise ValueError(
                f"vision must be 'features' or 'cues' (with n_cues > 0), got {vision!r}"
            )
        self.vision = vision
        self.kind, self.feature_dim, self.num_modes = kind, feature_dim, num_modes
        self.feature_drop = feature_drop  # training only: a target's features all hidden
        if cv_mode and not rollout:
            raise ValueError("cv_mode needs the roll-out (its mode 0 is the roll-out itself)")
        self.future_steps, self.rollout, self.cv_mode = future_steps, rollout, cv_mode
        self.past = track_encoder(past_steps * 3 + KINEMATICS, hidden)
        self.map = map_encoder(tuple(map_shape), hidden) if map_shape else None
        self.neighbours = track_encoder(neighbour_steps * 3, hidden) if neighbour_steps else None
        vision_out = hidden * (bool(map_shape) + bool(neighbour_steps))
        if feature_dim > 0:
            # Dropout after the projection: as strong a regulariser, far fewer random draws.
            self.frame = nn.Sequential(
                nn.LayerNorm(feature_dim),
                nn.Linear(feature_dim, hidden),
                nn.ReLU(),
                nn.Dropout(dropout),
            )
            # With n_cues: a linear readout of the cues seen in each frame, trained by the
            # auxiliary loss so that the projection keeps what the cues look like. With vision
            # "cues" the frames reach the rest of the head only through it: its probabilities
            # (what a perfect eye reads, as labelled) are the per-frame inputs.
            self.cue_readout = nn.Linear(hidden, n_cues) if n_cues else None
            width = n_cues if vision == "cues" else hidden
            if kind == "gru":
                self.temporal = nn.GRU(width + 1, hidden, batch_first=True)
                vision_out += hidden
            else:
                vision_out += 2 * width  # masked mean over frames + the newest valid frame
        self.out = nn.Sequential(
            nn.Linear(hidden + vision_out, 2 * hidden),
            nn.ReLU(),
            nn.Linear(2 * hidden, num_modes * (future_steps * 2 + 1)),
        )

    def forward(
        self,
        features: torch.Tensor | None,
        feature_valid: torch.Tensor | None,
        past: torch.Tensor,
        past_valid: torch.Tensor,
        map: torch.Tensor | None = None,
        neighbours: torch.Tensor | None = None,
        neighbours_valid: torch.Tensor | None = None,
        *,
        with_cue_logits: bool = False,
    ) -> tuple[torch.Tensor, ...]:
        """features (B, T, C), feature_valid (B, T), past (B, P, 2) oldest first in the agent
        frame, past_valid (B, P), map (B, H, W) (with map_shape), neighbours (B, M, S, 2) and
        neighbours_valid (B, M, S) (with neighbour_steps) → trajectories (B, K, F, 2) agent
        frame, logits (B, K); with_cue_logits: also the cue readout's logits (B, T, n_cues) of
        the same projection (the auxiliary loss's; one projection per step)."""
        pv = past_valid.to(past.dtype)[..., None]
        kin = kinematics(past, past_valid)
        cue_logits = None
        scale = torch.tensor([10.0, 5.0, 1.0, 5.0, 1.0], device=kin.device, dtype=kin.dtype)
        track = torch.cat([past * pv / OUTPUT_SCALE, pv], -1).flatten(1)
        h = [self.past(torch.cat([track, kin / scale], -1))]
        if self.feature_dim > 0:
            if self.training and self.feature_drop > 0:
                keep = torch.rand(features.shape[0], 1, device=features.device) >= self.feature_drop
                feature_valid = feature_valid & keep
            fv = feature_valid.to(features.dtype)[..., None]
            x = self.frame(features)
            cue_logits = self.cue_readout(x) if self.cue_readout is not None else None
            if self.vision == "cues":
                x = torch.sigmoid(cue_logits)
            x = x * fv
            if self.kind == "gru":
                _, last = self.temporal(torch.cat([x, fv], -1))
                h.append(last[0])
            else:
                mean = x.sum(1) / fv.sum(1).clamp_min(1)
                newest = feature_valid.long().cumsum(1).argmax(1)
                h += [mean, x[torch.arange(x.shape[0]), newest]]
        if self.map is not None:
            h.append(self.map(map[:, None].to(past.dtype)))
        if self.neighbours is not None:
            h.append(pool_neighbours(self.neighbours, neighbours, neighbours_valid, past.dtype))
        y = self.out(torch.cat(h, -1)).view(-1, self.num_modes, self.future_steps * 2 + 1)
        traj = y[..., :-1].reshape(-1, self.num_modes, self.future_steps, 2) * OUTPUT_SCALE
        if self.cv_mode:  # mode 0: no correction, the roll-out alone
            traj = torch.cat([torch.zeros_like(traj[:, :1]), traj[:, 1:]], 1)
        if self.rollout:
            traj = traj + constant_velocity(kin, self.future_steps)[:, None]
        if with_cue_logits:
            return traj, y[..., -1], cue_logits
        return traj, y[..., -1]


__all__ = [
    "TrajectoryHead",
    "constant_velocity",
    "kinematics",
    "track_encoder",
    "pool_neighbours",
]
