"""Feature read-out for the trajectory side, from what a step already computed (StepOutput).

Nothing is re-encoded: every quantity comes from the engine's own intermediates. Object
features are pooled with the predicted probability mask, downsampled to the /16 grid.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .inference_core import StepOutput

#: Columns of mask_geometry's output.
GEOMETRY_FIELDS = ("area", "cx", "cy", "x0", "y0", "x1", "y1")


def mask_to_grid(prob: torch.Tensor, pad: tuple[int, int, int, int], grid: tuple[int, int]
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
            box[i] = torch.stack([cols[0, 0] / w, rows[0, 0] / h,
                                  (cols[-1, 0] + 1) / w, (rows[-1, 0] + 1) / h]).to(prob.dtype)
    return torch.cat([area[:, None], cx[:, None], cy[:, None], box], dim=1)


def object_features(out: StepOutput) -> dict[str, torch.Tensor]:
    """Per-object vectors of one step, each (N, C):

    hidden_mean (N, CH)   sensory memory averaged over space (the seed sketch's feature
                          before its mean over objects)
    hidden_pooled (N, CH) sensory memory pooled with the object's mask
    readout_pooled (N, CV) memory readout pooled with the mask (zeros on unsegmented frames)
    key_pooled (N, CK)    the key pooled with the mask
    f16_pooled (N, 1024)  key-encoder layer3 features pooled with the mask
    geometry (N, 7)       mask_geometry of the predicted masks
    """
    obj_prob = out.prob[1:]
    n = obj_prob.shape[0]
    grid = tuple(out.key.shape[-2:])
    weights = mask_to_grid(obj_prob, out.pad, grid)
    device, dtype = out.key.device, out.key.dtype
    hidden = out.hidden[:n] if out.hidden is not None else torch.zeros((n, 0, *grid), device=device)
    readout = out.readout
    if readout is None:
        readout_pooled = torch.zeros((n, 0), device=device, dtype=dtype)
    else:
        readout_pooled = mask_pool(readout, weights[:readout.shape[0]])
        if readout.shape[0] < n:  # objects added on this very frame have no readout yet
            readout_pooled = F.pad(readout_pooled, (0, 0, 0, n - readout.shape[0]))
    return {
        "hidden_mean": hidden.mean(dim=(2, 3)),
        "hidden_pooled": mask_pool(hidden, weights),
        "readout_pooled": readout_pooled,
        "key_pooled": mask_pool(out.key, weights),
        "f16_pooled": mask_pool(out.f16, weights),
        "geometry": mask_geometry(obj_prob),
    }
