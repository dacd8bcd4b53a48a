"""Two runs' models on the same val targets, paired: how much lower one run's errors are than
another's — e.g. `--frames sweeps` against key frames, or `--precision 32` against bf16 —
with 95 % intervals from the same bootstrap as `eval` (scenes and training seeds resampled).

Each run is scored with its own config (its features, its frames); only the targets both runs
evaluate are compared, and the output says how many that is."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import RunError
from ..runs import RunLayout
from ..traj.prepare import PreparedData
from .bootstrap import SceneBootstrap
from .report import COMPARED
from .scoring import Scorer, score_method


@dataclass
class RunScores:
    """One run's method on its val targets: per-target metrics averaged over its seeds."""

    label: str
    split: str
    targets: list[tuple[str, str]]  # (instance_token, sample_token), in val order
    scenes: list[str]  # each target's scene
    per_target: dict[str, np.ndarray]  # metric → (S, N) per seed
    subsets: dict[str, tuple[np.ndarray, str]]  # subset → ((N,) bool, title)
    seeds: int


def score_run(layout: RunLayout, data: PreparedData, method: str) -> RunScores:
    """Score `method` of the run (every seed's model) on its prepared val split."""
    runs = score_method(layout, data, Scorer(data), method)
    records = data.val.records
    return RunScores(
        label=f"{layout.root.name}:{method}",
        split=data.val.split,
        targets=[(r.instance_token, r.sample_token) for r in records],
        scenes=[r.scene_name for r in records],
        per_target={k: np.stack([run[k] for run in runs]) for k in COMPARED},
        subsets=data.subsets(),
        seeds=len(runs),
    )


def compare_runs(a: RunScores, b: RunScores) -> dict:
    """Paired relative gains of a over b ((b − a) / b, lower errors are better) on the targets
    both evaluate, per subset of a's (with / without a past, and what lies ahead)."""
    where_b = {t: i for i, t in enumerate(b.targets)}
    ia = np.array([i for i, t in enumerate(a.targets) if t in where_b], dtype=int)
    if len(ia) == 0:
        raise RunError(
            f"{a.label} ({a.split}) and {b.label} ({b.split}) share no val target: "
            "compare runs evaluated on the same split of the same data"
        )
    ib = np.array([where_b[a.targets[i]] for i in ia], dtype=int)
    agents = [a.targets[i][0] for i in ia]
    boot = SceneBootstrap([a.scenes[i] for i in ia])
    out = {
        "a": a.label,
        "b": b.label,
        "split": a.split,
        "seeds": [a.seeds, b.seeds],
        "targets": len(ia),
        "only_a": len(a.targets) - len(ia),
        "only_b": len(b.targets) - len(ib),
        "subsets": {},
    }
    for subset, (mask, title) in a.subsets.items():
        mask = mask[ia]
        if not mask.any():
            continue
        block = out["subsets"][subset] = {
            "targets": int(mask.sum()),
            "title": title,
            "agents": len({agents[i] for i in np.flatnonzero(mask)}),
        }
        for k in COMPARED:
            va, vb = a.per_target[k][:, ia], b.per_target[k][:, ib]
            block[k] = {
                "a": float(va[:, mask].mean()),
                "b": float(vb[:, mask].mean()),
                "gain": boot.relative_gain(va, vb, mask).as_list(),
            }
    return out


def format_comparison(result: dict) -> str:
    """Markdown: one table per subset, a's and b's means and a's gain over b with its interval."""
    lines = [
        f"A = {result['a']} ({result['seeds'][0]} seeds), B = {result['b']} "
        f"({result['seeds'][1]} seeds), {result['split']}: {result['targets']} targets in common"
        + (
            f" (only in A: {result['only_a']}, only in B: {result['only_b']})"
            if result["only_a"] or result["only_b"]
            else ""
        )
        + "; gain = (B − A) / B, paired, [95 % interval: scenes and seeds resampled]"
    ]
    for subset, block in result["subsets"].items():
        lines += [
            "",
            f"**{block.get('title', subset)}**: {block['targets']} targets, "
            f"{block['agents']} agents",
            "",
            "| metric | A | B | gain of A over B |",
            "|---|---|---|---|",
        ]
        for k in COMPARED:
            v, lo, hi = block[k]["gain"]
            lines.append(
                f"| {k} | {block[k]['a']:.3f} | {block[k]['b']:.3f} | "
                f"{100 * v:+.1f} % [{100 * lo:+.1f}, {100 * hi:+.1f}] |"
            )
    return "\n".join(lines)


__all__ = ["COMPARED", "RunScores", "compare_runs", "format_comparison", "score_run"]
