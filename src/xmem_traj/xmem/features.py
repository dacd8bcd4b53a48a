"""Feature read-out for the trajectory side, from what a step already computed (StepOutput).

Nothing is re-encoded: every quantity comes from the engine's own intermediates. Object
features are pooled with the predicted probability mask, downsampled to the /16 grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from .engine_io import StepOutput
from .network import XMemDims

#: Columns of mask_geometry's output.
GEOMETRY_FIELDS = ("area", "cx", "cy", "x0", "y0", "x1", "y1")


def mask_to_grid(
    prob: torch.Tensor, pad: tuple[int, int, int, int], grid: tuple[int, int]
) -> torch.Tensor:
    """Object masks (N, H, W) at image size → (N, h, w) on the padded /16 feature grid."""
    padded = F.pad(prob, pad)
    return F.adaptive_avg_pool2d(padded[None], grid)[0]


def mask_pool(feature: torch.Tensor, weights: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mask-weighted average: feature (C, h, w) shared or (N, C, h, w) per object,
    weights (N, h, w) → (N, C). An empty mask pools to zeros."""
    if feature.ndim == 3:
        feature = feature[None]
    num = torch.einsum("nchw,nhw->nc", feature.expand(weights.shape[0], -1, -1, -1), weights)
    return num / (weights.sum(dim=(1, 2))[:, None] + eps)


def mask_geometry(prob: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Object masks (N, H, W) → (N, 7) = area fraction, soft centroid (cx, cy) and the box
    (x0, y0, x1, y1) of prob > threshold, all in normalised image coordinates [0, 1]; an empty
    mask gives zeros."""
    n, h, w = prob.shape
    ys = (torch.arange(h, device=prob.device, dtype=prob.dtype) + 0.5) / h
    xs = (torch.arange(w, device=prob.device, dtype=prob.dtype) + 0.5) / w
    mass = prob.sum(dim=(1, 2))
    area = mass / (h * w)
    safe = mass.clamp_min(1e-6)
    cx = (prob.sum(dim=1) * xs).sum(dim=1) / safe
    cy = (prob.sum(dim=2) * ys).sum(dim=1) / safe
    box = torch.zeros((n, 4), device=prob.device, dtype=prob.dtype)
    hard = prob > threshold
    for i in range(n):
        rows = hard[i].any(dim=1).nonzero()
        cols = hard[i].any(dim=0).nonzero()
        if len(rows):
            box[i] = torch.stack(
                [cols[0, 0] / w, rows[0, 0] / h, (cols[-1, 0] + 1) / w, (rows[-1, 0] + 1) / h]
            ).to(prob.dtype)
    return torch.cat([area[:, None], cx[:, None], cy[:, None], box], dim=1)


@dataclass(frozen=True)
class FeatureKind:
    """One per-object feature: its width for a network's dims, how it is read out of a step,
    and what it means (the CLI's help derives from it)."""

    width: Callable[[XMemDims], int]
    compute: Callable[["_StepReadout"], torch.Tensor]
    help: str


@dataclass
class _StepReadout:
    """What the feature kinds read from one StepOutput (in float32): object masks at image
    size and on the padded /16 grid, and the step's tensors."""

    obj_prob: torch.Tensor  # (N, H, W)
    weights: torch.Tensor  # (N, h, w)
    hidden: torch.Tensor  # (N, CH, h, w) (CH = 0 without sensory memory)
    key: torch.Tensor  # (CK, h, w)
    f16: torch.Tensor  # (1024, h, w)
    readout: torch.Tensor | None  # (N_mem, CV, h, w)
    value_dim: int
    out: StepOutput

    def finer(self, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The key encoder's f8 or f4 (float32) and the object masks on its grid."""
        feature = getattr(self.out, stage).float()
        return feature, mask_to_grid(self.obj_prob, self.out.pad, tuple(feature.shape[-2:]))


def _halves(r: "_StepReadout", stage: str) -> torch.Tensor:
    """A finer stage pooled over the left and over the right half of each object's mask (in
    the image): where on the object something is — an indicator's side — survives."""
    feature, weights = r.finer(stage)
    w = weights.shape[-1]
    cols = torch.arange(w, device=weights.device, dtype=weights.dtype)
    mass = weights.sum(dim=1)  # (N, w)
    centre = (mass * cols).sum(-1) / mass.sum(-1).clamp_min(1e-6)  # (N,)
    left = weights * (cols[None, None] < centre[:, None, None])
    return torch.cat([mask_pool(feature, left), mask_pool(feature, weights - left)], 1)


def _readout_pooled(r: _StepReadout) -> torch.Tensor:
    n, readout = r.weights.shape[0], r.readout
    if readout is None:  # the frame was not segmented (an object's first frame): zeros
        return r.weights.new_zeros((n, r.value_dim))
    pooled = mask_pool(readout, r.weights[: readout.shape[0]])
    if readout.shape[0] < n:  # objects added on this very frame have no readout yet
        pooled = F.pad(pooled, (0, 0, 0, n - readout.shape[0]))
    return pooled


#: Every per-object feature the trajectory side can read, in a fixed order.
FEATURE_KINDS: dict[str, FeatureKind] = {
    "hidden_mean": FeatureKind(
        lambda d: d.hidden_dim,
        lambda r: r.hidden.mean(dim=(2, 3)),
        "sensory memory averaged over space (the seed sketch's feature)",
    ),
    "hidden_pooled": FeatureKind(
        lambda d: d.hidden_dim,
        lambda r: mask_pool(r.hidden, r.weights),
        "sensory memory pooled with the object's predicted mask",
    ),
    "readout_pooled": FeatureKind(
        lambda d: d.value_dim,
        _readout_pooled,
        "memory readout pooled with the mask (zeros where not segmented)",
    ),
    "key_pooled": FeatureKind(
        lambda d: d.key_dim,
        lambda r: mask_pool(r.key, r.weights),
        "the frame's key pooled with the mask",
    ),
    "f16_pooled": FeatureKind(
        lambda d: 1024,
        lambda r: mask_pool(r.f16, r.weights),
        "key-encoder layer3 features pooled with the mask",
    ),
    "geometry": FeatureKind(
        lambda d: len(GEOMETRY_FIELDS),
        lambda r: mask_geometry(r.obj_prob),
        "mask area, centroid and box (" + ", ".join(GEOMETRY_FIELDS) + ")",
    ),
    "f8_pooled": FeatureKind(
        lambda d: 512,
        lambda r: mask_pool(*r.finer("f8")),
        "key-encoder layer2 (/8) features pooled with the mask",
    ),
    "f8_halves": FeatureKind(
        lambda d: 1024,
        lambda r: _halves(r, "f8"),
        "layer2 (/8) features pooled over the mask's left and right halves",
    ),
    "f4_halves": FeatureKind(
        lambda d: 512,
        lambda r: _halves(r, "f4"),
        "res2 (/4) features pooled over the mask's left and right halves",
    ),
}

#: Named feature sets of FEATURE_KINDS.
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "hidden_mean": ("hidden_mean",),
    "rich": ("hidden_pooled", "readout_pooled", "key_pooled", "geometry"),
    "all": tuple(FEATURE_KINDS),
    "cues": ("hidden_pooled", "readout_pooled", "key_pooled", "geometry", "f8_halves"),
}


def resolve_feature_kinds(spec: str | Sequence[str]) -> tuple[str, ...]:
    """A set name ('rich') or a comma list / sequence of kinds → the kinds, in order."""
    if isinstance(spec, str):
        if spec in FEATURE_SETS:
            return FEATURE_SETS[spec]
        spec = [s.strip() for s in spec.split(",") if s.strip()]
    bad = [s for s in spec if s not in FEATURE_KINDS]
    if bad or not spec:
        raise ValueError(
            f"unknown feature kinds {bad or list(spec)}; use a set {sorted(FEATURE_SETS)} "
            f"or a comma list of {list(FEATURE_KINDS)}"
        )
    return tuple(spec)


def feature_width(kinds: Sequence[str], dims: XMemDims) -> int:
    """Width of the concatenated kinds for a network of these dims."""
    return sum(FEATURE_KINDS[k].width(dims) for k in kinds)


def object_features(
    out: StepOutput, kinds: Sequence[str] = tuple(FEATURE_KINDS), *, value_dim: int | None = None
) -> dict[str, torch.Tensor]:
    """Per-object float32 vectors (N, width) of one step for each of `kinds` (see
    FEATURE_KINDS); nothing is re-encoded. value_dim sizes the zero readout of unsegmented
    frames (default: zero width, as the step carries no readout)."""
    obj_prob = out.prob[1:].float()
    n = obj_prob.shape[0]
    grid = tuple(out.key.shape[-2:])
    weights = mask_to_grid(obj_prob, out.pad, grid)
    hidden = (
        out.hidden[:n].float()
        if out.hidden is not None
        else torch.zeros((n, 0, *grid), device=out.key.device)
    )
    if value_dim is None:
        value_dim = out.readout.shape[1] if out.readout is not None else 0
    r = _StepReadout(
        obj_prob,
        weights,
        hidden,
        out.key.float(),
        out.f16.float(),
        None if out.readout is None else out.readout.float(),
        value_dim,
        out,
    )
    return {k: FEATURE_KINDS[k].compute(r) for k in kinds}
