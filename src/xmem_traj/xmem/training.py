"""Training XMem's segmentation, as the reference's main training pass does it (XMem
model/trainer.py `do_pass`, model/losses.py), for clips of one object each:

- every frame is key-encoded once; the first frame's value is encoded with the ground-truth
  mask (hidden state starting at zeros);
- each later frame t reads memory with a full softmax (no top-k) over the memory frames: all
  earlier ones while t <= num_ref_frames, else frame 0 and num_ref_frames − 1 random earlier
  ones; the decoder segments it, and (except for the last frame) its predicted mask is encoded
  into memory, with the hidden state's deep update at probability deep_update_prob;
- the loss of frame t is the bootstrapped cross-entropy of the aggregated logits (background,
  object) — the mean over the hardest share p of pixels, p annealed linearly from 1 to top_p
  between start_warm and end_warm steps — plus the dice loss of the object's probability.

BatchNorm stays in eval mode (the reference's trainer keeps the network in eval mode).
Stateless: the loop, data and checkpoints live in traj/segmentation.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .memory_util import full_softmax, get_similarity
from .network import XMem, aggregate


@dataclass(frozen=True)
class ClipOutputs:
    """Per segmented frame t = 1 … T−1: aggregated logits (B, 2, H, W) and the object's
    probability (B, H, W)."""

    logits: list[torch.Tensor]
    probs: list[torch.Tensor]


def segment_clip(
    net: XMem,
    frames: torch.Tensor,
    first_mask: torch.Tensor,
    *,
    num_ref_frames: int = 3,
    deep_update_prob: float = 0.2,
    generator: torch.Generator | None = None,
) -> ClipOutputs:
    """frames (B, T, 3, H, W) normalised, H and W multiples of 16, T >= 2; first_mask (B, H, W)
    the object at frame 0 → the segmentation of frames 1 … T−1 (one object per clip)."""
    b, t_len = frames.shape[:2]
    if t_len < 2:
        raise ValueError(f"a clip needs at least 2 frames, got {t_len}")
    counts = [1] * b
    key, shrinkage, selection, f16, f8, f4 = (
        None if x is None else x.unflatten(0, (b, t_len))
        for x in net.encode_key(frames.flatten(0, 1))
    )
    hidden = None
    if net.hidden_dim > 0:
        hidden = frames.new_zeros((b, net.hidden_dim, *key.shape[-2:]), dtype=f16.dtype)
    value, hidden = net.encode_value(
        frames[:, 0], f16[:, 0], hidden, first_mask.to(f16.dtype), counts
    )
    values = [value]
    logits_out, probs_out = [], []
    for t in range(1, t_len):
        refs = _reference_frames(t, b, num_ref_frames, generator).to(key.device)
        readout = _read_memory(key, shrinkage, selection, values, refs, t)
        last = t == t_len - 1
        hidden, obj_logits, _ = net.segment(
            (f16[:, t], f8[:, t], f4[:, t]), readout.to(f16.dtype), hidden, counts, h_out=not last
        )
        agg_logits, agg_prob = aggregate(torch.sigmoid(obj_logits.float())[:, None], dim=1)
        logits_out.append(agg_logits)
        probs_out.append(agg_prob[:, 1])
        if not last:
            deep = bool(torch.rand((), generator=generator) < deep_update_prob)
            value, hidden = net.encode_value(
                frames[:, t],
                f16[:, t],
                hidden,
                agg_prob[:, 1].to(f16.dtype),
                counts,
                is_deep_update=deep,
            )
            values.append(value)
    return ClipOutputs(logits_out, probs_out)


def _reference_frames(t: int, b: int, num_ref_frames: int, generator) -> torch.Tensor:
    """(B, R) memory frames read at frame t: all earlier ones up to num_ref_frames, beyond
    that, per clip, frame 0 and num_ref_frames − 1 random earlier frames."""
    if t <= num_ref_frames:
        return torch.arange(t).expand(b, t)
    return torch.stack(
        [
            torch.cat(
                [
                    torch.zeros(1, dtype=torch.long),
                    torch.randperm(t - 1, generator=generator)[: num_ref_frames - 1] + 1,
                ]
            )
            for _ in range(b)
        ]
    )


def _read_memory(key, shrinkage, selection, values: list, refs: torch.Tensor, t: int):
    """The full-softmax memory readout of frame t from the reference frames' keys and values
    → (B, CV, h, w) float32."""
    b = key.shape[0]
    rows = torch.arange(b, device=key.device)[:, None]
    mk = key[rows, refs].transpose(1, 2).flatten(2)  # (B, CK, R·h·w)
    ms = None if shrinkage is None else shrinkage[rows, refs].transpose(1, 2).flatten(2)
    qe = None if selection is None else selection[:, t].flatten(2)
    affinity = full_softmax(get_similarity(mk, ms, key[:, t].flatten(2), qe))
    mv = torch.stack(values, 1)[rows, refs].transpose(1, 2).flatten(2)  # (B, CV, R·h·w)
    return (mv.float() @ affinity).view(b, -1, *key.shape[-2:])


def bootstrap_share(step: int, *, start_warm: int, end_warm: int, top_p: float = 0.15) -> float:
    """The share of hardest pixels the cross-entropy averages at this step: 1 before
    start_warm, top_p after end_warm, linear in between."""
    if step < start_warm:
        return 1.0
    if step >= end_warm:
        return top_p
    return top_p + (1 - top_p) * (end_warm - step) / (end_warm - start_warm)


def bootstrapped_ce(logits: torch.Tensor, target: torch.Tensor, share: float) -> torch.Tensor:
    """logits (B, 2, H, W), target (B, H, W) long in {0, 1} → cross-entropy of each clip's
    hardest `share` of pixels (all pixels when share >= 1), averaged over the clips (the
    reference takes the hardest pixels clip by clip)."""
    if share >= 1:
        return F.cross_entropy(logits, target)
    raw = F.cross_entropy(logits, target, reduction="none").flatten(1)
    return torch.topk(raw, max(1, int(raw.shape[1] * share)), dim=1, sorted=False)[0].mean()


def dice_loss(prob: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """prob (B, H, W) of the object, target (B, H, W) → mean over clips of
    1 − (2·|p∩g| + 1) / (|p| + |g| + 1)."""
    p, g = prob.flatten(1), target.float().flatten(1)
    return (1 - (2 * (p * g).sum(-1) + 1) / (p.sum(-1) + g.sum(-1) + 1)).mean()


def clip_loss(out: ClipOutputs, masks: torch.Tensor, share: float) -> dict[str, torch.Tensor]:
    """masks (B, T, H, W) ground truth → {"ce", "dice", "total"}, each summed over frames 1 … T−1
    (the reference sums the per-frame losses)."""
    ce = sum(bootstrapped_ce(lg, masks[:, t + 1].long(), share) for t, lg in enumerate(out.logits))
    dice = sum(dice_loss(p, masks[:, t + 1]) for t, p in enumerate(out.probs))
    return {"ce": ce, "dice": dice, "total": ce + dice}


def mask_iou(prob: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """prob (B, H, W), target (B, H, W) → IoU of prob > 0.5 with the target per clip (B,);
    NaN where both are empty."""
    pred, gt = prob > 0.5, target.bool()
    inter = (pred & gt).flatten(1).sum(-1).float()
    union = (pred | gt).flatten(1).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.full_like(union, float("nan")))


__all__ = [
    "ClipOutputs",
    "bootstrap_share",
    "bootstrapped_ce",
    "clip_loss",
    "dice_loss",
    "mask_iou",
    "segment_clip",
]
