"""Trajectory losses and metrics with the semantics of nuscenes.eval.prediction.metrics:
modes ranked by probability (descending), running min over the top k, ADE = mean pointwise L2,
FDE = L2 of the last point, miss = max pointwise L2 >= 2 m. Metrics are torchmetrics.Metric
classes with sum/count states, so they reduce correctly across DDP ranks."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torchmetrics import Metric

from ..data.maps import MAP_X, MAP_Y


def last_valid_step(valid: torch.Tensor) -> torch.Tensor:
    """valid (B, T) → (B,) the index of each row's last valid step (0 where none is)."""
    return valid.long().cumsum(-1).argmax(-1)


def displacement(pred: torch.Tensor, gt: torch.Tensor, gt_valid: torch.Tensor | None = None):
    """pred (B, M, T, 2), gt (B, T, 2), gt_valid (B, T) → ade, fde, max distance, each (B, M).
    Invalid steps are left out (FDE at the last valid step)."""
    dist = torch.linalg.norm(pred - gt[:, None], dim=-1)  # (B, M, T)
    if gt_valid is None:
        return dist.mean(-1), dist[..., -1], dist.max(-1).values
    v = gt_valid[:, None].to(dist.dtype)
    n = v.sum(-1).clamp_min(1)
    ade = (dist * v).sum(-1) / n
    last = last_valid_step(gt_valid)[:, None, None].expand(-1, dist.shape[1], 1)
    fde = dist.gather(-1, last)[..., 0]
    mx = (dist * v).max(-1).values
    return ade, fde, mx


def devkit_order(probs: torch.Tensor) -> torch.Tensor:
    """(B, M) probabilities → (B, M) mode indices, most probable first, ties broken as the
    devkit's np.flip(argsort) does (the last of the tied modes first)."""
    return torch.flip(torch.argsort(probs, dim=-1, stable=True), dims=[-1])


def rank_over_top_k(values: torch.Tensor, probs: torch.Tensor, k: int, *, largest=False):
    """(B, M) metric per mode → (B,) its min (or max) over the k most probable modes; with
    fewer than k modes all are used. Ties in probability are broken as the devkit's
    np.flip(argsort) does."""
    order = devkit_order(probs)
    ranked = values.gather(-1, order)[:, : min(k, values.shape[1])]
    return ranked.max(-1).values if largest else ranked.min(-1).values


class _TopKMetric(Metric):
    full_state_update = False
    higher_is_better = False

    def __init__(self, k: int, **kwargs):
        super().__init__(**kwargs)
        self.k = k
        self.add_state(
            "total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def _per_agent(self, ade, fde, mx, probs) -> torch.Tensor:
        raise NotImplementedError

    def update(
        self,
        pred: torch.Tensor,
        probs: torch.Tensor,
        gt: torch.Tensor,
        gt_valid: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
    ) -> None:
        """pred (B, M, T, 2), probs (B, M), gt (B, T, 2); valid (B,) selects agents."""
        values = self._per_agent(*displacement(pred, gt, gt_valid), probs)
        if valid is not None:
            values = values[valid]
        self.total += values.double().sum()
        self.count += values.numel()

    def compute(self) -> torch.Tensor:
        return (self.total / self.count.clamp_min(1)).float()


class MinADEK(_TopKMetric):
    def _per_agent(self, ade, fde, mx, probs):
        return rank_over_top_k(ade, probs, self.k)


class MinFDEK(_TopKMetric):
    def _per_agent(self, ade, fde, mx, probs):
        return rank_over_top_k(fde, probs, self.k)


class MissRateTopK(_TopKMetric):
    def __init__(self, k: int, tolerance: float = 2.0, **kwargs):
        super().__init__(k, **kwargs)
        self.tolerance = tolerance

    def _per_agent(self, ade, fde, mx, probs):
        return rank_over_top_k((mx >= self.tolerance).to(ade.dtype), probs, self.k)


def per_agent_metrics(
    pred: torch.Tensor,
    probs: torch.Tensor,
    gt: torch.Tensor,
    gt_valid: torch.Tensor | None = None,
    ks=(1, 5, 10),
) -> dict[str, torch.Tensor]:
    """Each challenge metric per agent, (B,) float64: what the metric classes average."""
    ade, fde, mx = displacement(pred, gt, gt_valid)
    out = {}
    for k in ks:
        out[f"MinADEK_{k}"] = rank_over_top_k(ade, probs, k).double()
        out[f"MinFDEK_{k}"] = rank_over_top_k(fde, probs, k).double()
        out[f"MissRateTopK_2_{k}"] = rank_over_top_k((mx >= 2.0).to(ade.dtype), probs, k).double()
    return out


def make_metrics(ks=(1, 5, 10), **kwargs) -> dict[str, _TopKMetric]:
    """The prediction challenge's metrics (OffRoadRate needs the map expansion, left out).
    kwargs go to torchmetrics (e.g. sync_on_compute=False for one-process scoring)."""
    out: dict[str, _TopKMetric] = {}
    for k in ks:
        out[f"MinADEK_{k}"] = MinADEK(k, **kwargs)
        out[f"MinFDEK_{k}"] = MinFDEK(k, **kwargs)
        out[f"MissRateTopK_2_{k}"] = MissRateTopK(k, 2.0, **kwargs)
    return out


@dataclass(frozen=True)
class ModeLoss:
    """How best-of-K picks the mode it trains: `assign` "ade" (the mode of lowest ADE) or
    "miss" (of lowest largest pointwise distance, the miss rate's criterion); what the mode
    classifier learns: that mode, or with `temperature` T > 0 (metres) the soft target
    softmax(−d / T) over the modes, d the assignment's distance."""

    assign: str = "ade"
    temperature: float = 0.0

    @classmethod
    def of(cls, experimental: dict) -> "ModeLoss":
        return cls(experimental["mode_assign"], experimental["mode_temperature"])


BEST_ADE = ModeLoss()  # the default: the mode of lowest ADE, learned as a hard target


def ade_fde_loss(
    pred: torch.Tensor,
    logits: torch.Tensor,
    gt: torch.Tensor,
    gt_valid: torch.Tensor | None = None,
    *,
    modes: ModeLoss = BEST_ADE,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The seed's ADE/FDE loss, best-of-K for several modes → (ade, fde, loss), batch means.

    pred (B, M, T, 2), logits (B, M), gt (B, T, 2). The regression term is ADE + FDE of the
    mode `modes` assigns (by default the lowest ADE); with M > 1 the mode classifier learns
    that mode (cross-entropy), or the soft target `modes.temperature` asks for.
    """
    ade, fde, largest = displacement(pred, gt, gt_valid)
    distance = ade if modes.assign == "ade" else largest
    best = distance.argmin(-1)
    ade_b = ade.gather(-1, best[:, None])[:, 0]
    fde_b = fde.gather(-1, best[:, None])[:, 0]
    loss = ade_b.mean() + fde_b.mean()
    if pred.shape[1] > 1:
        t = modes.temperature
        target = (-distance.detach() / t).softmax(-1) if t > 0 else best
        loss = loss + F.cross_entropy(logits, target)
    return ade_b.mean(), fde_b.mean(), loss


def offroad_loss(
    pred: torch.Tensor, raster: torch.Tensor, gt_valid: torch.Tensor | None = None
) -> torch.Tensor:
    """The share of predicted points off the drivable area, every mode alike (what OffRoadRate
    counts) → a scalar; differentiable through bilinear sampling of the raster.

    pred (B, M, T, 2) in the agent frame (x right, y along the heading), raster (B, H, W) the
    drivable share of each cell (data/maps.py: rows along y from MAP_Y[0], columns along x from
    MAP_X[0]), gt_valid (B, T). Points outside the raster count for nothing: there the map is
    not known to the head."""
    u = (pred[..., 0] - MAP_X[0]) / (MAP_X[1] - MAP_X[0]) * 2 - 1  # column, -1..1 over the edges
    v = (pred[..., 1] - MAP_Y[0]) / (MAP_Y[1] - MAP_Y[0]) * 2 - 1  # row
    b, m, t = u.shape
    grid = torch.stack([u, v], -1).reshape(b, m * t, 1, 2).to(raster.dtype)
    drivable = F.grid_sample(
        raster[:, None], grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    off = 1.0 - drivable.reshape(b, m, t).to(pred.dtype)
    inside = (u.abs() <= 1) & (v.abs() <= 1)
    if gt_valid is not None:
        inside = inside & gt_valid[:, None]
    weight = inside.to(pred.dtype)
    return (off * weight).sum() / weight.sum().clamp_min(1)
