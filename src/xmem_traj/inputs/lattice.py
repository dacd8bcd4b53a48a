"""CoverNet's fixed trajectory set, built as the paper builds it (Phan-Minh et al., CVPR 2020,
"fixed ε" sets): a greedy set cover of the train split's futures in the agent frame, where a
member covers every future within ε at every step (the maximum pointwise distance). The
candidates are the futures themselves. The published sets (ε = 2, 4, 8 m on nuScenes) are a
separate download that cannot be fetched here, and they would not fit another world's
futures anyway.

The set is a split-level constant (slot "lattice", (L, F, 2)), built on the train split only
(CoverNet reads it as a label provider; the model keeps it as a buffer, so a checkpoint
carries it) and cached, keyed by the train targets, the annotations and ε."""

from __future__ import annotations

import logging

import numpy as np

from ..cache import cached_arrays
from .base import InputProvider, PrepareContext, SplitTargets, register_input
from .rasters import _sources

log = logging.getLogger(__name__)

FORMAT = 1
BLOCK = 512  # candidates compared per step of the cover's distance matrix


def epsilon_cover(futures: np.ndarray, eps: float) -> np.ndarray:
    """futures (N, F, 2) → indices of a greedy ε-cover: repeatedly the future that covers the
    most not yet covered ones (within eps at every step), until all are covered; ties go to
    the lower index."""
    n = len(futures)
    covers = np.zeros((n, n), bool)
    flat = futures.astype(np.float32)
    for start in range(0, n, BLOCK):
        block = flat[start : start + BLOCK]
        dist = np.linalg.norm(block[:, None] - flat[None], axis=-1).max(-1)
        covers[start : start + BLOCK] = dist <= eps
    uncovered = np.ones(n, bool)
    chosen: list[int] = []
    while uncovered.any():
        gain = covers[:, uncovered].sum(1)
        best = int(gain.argmax())
        chosen.append(best)
        uncovered &= ~covers[best]
    return np.array(chosen, np.int64)


def train_lattice(
    traj: np.ndarray, future_valid: np.ndarray, *, eps: float, most: int
) -> np.ndarray:
    """The ε-cover of the complete futures among traj (N, F, 2) (at most `most`, evenly
    spaced) → (L, F, 2) float32, members in the order the greedy cover chose them."""
    full = traj[future_valid.all(1)]
    if not len(full):
        raise ValueError("no train target has a complete future: CoverNet has no lattice")
    if len(full) > most:
        full = full[np.linspace(0, len(full) - 1, most).round().astype(int)]
    members = full[epsilon_cover(full, eps)].astype(np.float32)
    log.info(
        "CoverNet lattice: %d members cover %d futures at ε %g m", len(members), len(full), eps
    )
    return members


class LatticeInput(InputProvider):
    """No per-target slots; the lattice as a constant of the train split."""

    slots = ()

    def __init__(self, ctx: PrepareContext):
        self.ctx = ctx

    def build(self, split: SplitTargets) -> dict[str, np.ndarray]:
        return {}

    def constants(self, split: SplitTargets) -> dict[str, np.ndarray]:
        if split.role != "train":
            return {}
        c, ds = self.ctx.cfg.context, split.dataset
        tracks = [ds.tracks(i) for i in range(len(ds))]
        traj = np.stack([t["traj"] for t in tracks])
        valid = np.stack([t["future_valid"] for t in tracks])
        identity = {
            "format": FORMAT,
            **_sources(split),
            "eps": c.lattice_eps,
            "futures": c.lattice_futures,
        }
        entry = cached_arrays(
            self.ctx.cfg.data.resolved_cache_dir(),
            "lattice",
            identity,
            1,  # one row: the set
            lambda: {
                "lattice": train_lattice(traj, valid, eps=c.lattice_eps, most=c.lattice_futures)[
                    None
                ]
            },
            describe=f"(CoverNet lattice, {ds.split})",
        )
        return {"lattice": entry["lattice"][0]}


register_input("lattice", LatticeInput)

__all__ = ["LatticeInput", "epsilon_cover", "train_lattice"]
