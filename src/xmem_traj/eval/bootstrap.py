"""Uncertainty that counts agents: cluster bootstrap over agents (instances), since the targets
of one agent at successive samples are strongly correlated.

Every replicate draws as many agents as there are, with replacement, and takes all the
targets of each drawn agent; the statistic's 2.5th and 97.5th percentiles over replicates
give the 95 % interval. Paired comparisons resample the same agents for both methods.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

REPLICATES = 2000


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"

    def as_list(self) -> list[float]:
        return [self.value, self.low, self.high]


class ClusterBootstrap:
    """Replicates of agent draws for targets labelled by `clusters` (one label per target);
    the same draws serve every statistic, so intervals of different methods are paired."""

    def __init__(self, clusters: Sequence[str], *, replicates: int = REPLICATES, seed: int = 0):
        labels, index = np.unique(np.asarray(clusters), return_inverse=True)
        self.n_clusters = len(labels)
        # counts[r, c]: how often cluster c is drawn in replicate r
        rng = np.random.default_rng(seed)
        draws = rng.integers(0, self.n_clusters, size=(replicates, self.n_clusters))
        self.counts = np.stack([np.bincount(d, minlength=self.n_clusters) for d in draws]).astype(float)
        self.index = index

    def _cluster_sums(self, values: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        keep = np.ones(len(values), bool) if mask is None else np.asarray(mask, bool)
        sums = np.bincount(self.index[keep], weights=values[keep], minlength=self.n_clusters)
        sizes = np.bincount(self.index[keep], minlength=self.n_clusters).astype(float)
        return sums, sizes

    def mean(self, values: np.ndarray, mask: np.ndarray | None = None) -> Interval:
        """The mean over targets (in `mask`) with its 95 % interval."""
        sums, sizes = self._cluster_sums(np.asarray(values, float), mask)
        reps = (self.counts @ sums) / np.maximum(self.counts @ sizes, 1)
        return Interval(float(sums.sum() / max(sizes.sum(), 1)), *np.percentile(reps, [2.5, 97.5]))

    def ratio_of_differences(self, a: np.ndarray, b: np.ndarray, c: np.ndarray,
                             mask: np.ndarray | None = None) -> Interval:
        """(mean(b) − mean(a)) / (mean(b) − mean(c)) with its interval: e.g. the share of the
        gain from b (history-only) to c (cue oracle) that a (XMem) captures."""
        sa, sizes = self._cluster_sums(np.asarray(a, float), mask)
        sb, _ = self._cluster_sums(np.asarray(b, float), mask)
        sc, _ = self._cluster_sums(np.asarray(c, float), mask)
        point = (sb.sum() - sa.sum()) / (sb.sum() - sc.sum()) if sb.sum() != sc.sum() else np.nan
        ra, rb, rc = self.counts @ sa, self.counts @ sb, self.counts @ sc
        with np.errstate(divide="ignore", invalid="ignore"):
            reps = (rb - ra) / (rb - rc)
        reps = reps[np.isfinite(reps)]
        low, high = np.percentile(reps, [2.5, 97.5]) if len(reps) else (np.nan, np.nan)
        return Interval(float(point), float(low), float(high))

    def relative_gain(self, a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> Interval:
        """(mean(b) − mean(a)) / mean(b): how much lower a is than b, paired over agents."""
        sa, sizes = self._cluster_sums(np.asarray(a, float), mask)
        sb, _ = self._cluster_sums(np.asarray(b, float), mask)
        ra, rb = self.counts @ sa, self.counts @ sb
        with np.errstate(divide="ignore", invalid="ignore"):
            reps = (rb - ra) / rb
        reps = reps[np.isfinite(reps)]
        point = (sb.sum() - sa.sum()) / sb.sum() if sb.sum() != 0 else np.nan
        low, high = np.percentile(reps, [2.5, 97.5]) if len(reps) else (np.nan, np.nan)
        return Interval(float(point), float(low), float(high))  # NaN where b is 0 (e.g. no misses)


__all__ = ["ClusterBootstrap", "Interval", "REPLICATES"]
