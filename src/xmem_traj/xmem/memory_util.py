"""Memory reading maths: XMem's anisotropic L2 similarity and the top-k softmax."""

from __future__ import annotations

import math

import torch


def get_similarity(
    mk: torch.Tensor, ms: torch.Tensor | None, qk: torch.Tensor, qe: torch.Tensor | None
) -> torch.Tensor:
    """Negative shrinkage-scaled, selection-weighted squared distance.

    mk (B, CK, M) memory keys, ms (B, 1, M) shrinkage | None, qk (B, CK, Q) query keys,
    qe (B, CK, Q) selection | None → (B, M, Q). Computed as −a² + 2ab − b² term by term like
    the reference, so top-k near-ties fall the same way. Always in float32: in bfloat16 the
    three terms would cancel catastrophically.
    """
    with torch.autocast(mk.device.type, enabled=False):  # distances in float32, also under bf16
        return _similarity(
            mk.float(),
            None if ms is None else ms.float(),
            qk.float(),
            None if qe is None else qe.float(),
        )


def _similarity(mk, ms, qk, qe):
    ck = mk.shape[1]
    mk = mk.flatten(start_dim=2)
    qk = qk.flatten(start_dim=2)
    if qe is not None:
        qe = qe.flatten(start_dim=2)
        mk_t = mk.transpose(1, 2)
        a_sq = mk_t.pow(2) @ qe
        two_ab = 2 * (mk_t @ (qk * qe))
        b_sq = (qe * qk.pow(2)).sum(1, keepdim=True)
        similarity = -a_sq + two_ab - b_sq
    else:
        a_sq = mk.pow(2).sum(1).unsqueeze(2)
        two_ab = 2 * (mk.transpose(1, 2) @ qk)
        similarity = -a_sq + two_ab
    if ms is not None:
        ms = ms.flatten(start_dim=1).unsqueeze(2)
        return similarity * ms / math.sqrt(ck)
    return similarity / math.sqrt(ck)


def topk_softmax(similarity: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k softmax over the memory dim of (B, M, Q), exponentiated without max subtraction
    (as the reference) → affinity (B, M, Q), usage (B, M) = affinity summed over queries."""
    if similarity.shape[1] < top_k:
        raise ValueError(
            f"memory holds {similarity.shape[1]} elements for an object group but top_k={top_k}: "
            "XMem needs at least top_k elements (one memory frame has (H/16)·(W/16)); use a "
            "larger image or a smaller top_k"
        )
    values, indices = torch.topk(similarity, k=top_k, dim=1)
    x_exp = values.exp()
    x_exp = x_exp / x_exp.sum(dim=1, keepdim=True)
    affinity = torch.zeros_like(similarity).scatter_(1, indices, x_exp)
    return affinity, affinity.sum(dim=2)


def full_softmax(similarity: torch.Tensor) -> torch.Tensor:
    """Plain softmax with max subtraction over the memory dim (used by consolidation)."""
    maxes = similarity.max(dim=1, keepdim=True)[0]
    x_exp = torch.exp(similarity - maxes)
    return x_exp / x_exp.sum(dim=1, keepdim=True)
