"""The report of a scored run: per subset and method each metric's mean with its 95 %
interval (scenes and training seeds resampled, eval/bootstrap.py), the spread over training
seeds, the primary comparison declared in the config, and the exploratory comparisons that
the registry's roles imply (eval.json and the printed Markdown tables)."""

from __future__ import annotations

import numpy as np

from ..config_groups import DECODING_OPTIONS
from ..methods import METHODS
from .bootstrap import SceneBootstrap, per_seed

BASELINE = "ConstantVelocityHeading"
COMPARED = (
    "MinADEK_1",
    "MinFDEK_1",
    "MissRateTopK_2_1",
    "MinADEK_5",
    "MinFDEK_5",
    "MissRateTopK_2_5",
)
MAIN_SUBSETS = ("all", "with_past", "no_past")


def comparison_pairs(methods) -> list[tuple[str, str]]:
    """(a, b) method names or baseline to compare on the targets with a past, from the
    registry's roles: each visual model against each non-visual learned method, each learned
    non-diagnostic method against ConstantVelocityHeading, each diagnostic against each
    non-visual learned method."""
    ms = [METHODS[m] for m in methods]
    blind = [m.name for m in ms if not m.visual and m.role != "diagnostic"]
    pairs = [(m.name, b) for m in ms if m.visual and m.role != "diagnostic" for b in blind]
    pairs += [(m.name, BASELINE) for m in ms if m.role != "diagnostic"]
    pairs += [(m.name, b) for m in ms if m.role == "diagnostic" for b in blind]
    return pairs


def summarize(data, per_target: dict, seeds: dict) -> dict:
    """The JSON summary of a scored run (data: its PreparedData; per_target: label → metric →
    (S, N) per-seed or (N,) values): per subset and method each metric's mean (seeds averaged)
    with its interval, the standard deviation over seeds (ddof = 1) of minFDE_1, the primary
    comparison and the exploratory ones."""
    records = data.val.records
    boot = SceneBootstrap([r.scene_name for r in records], replicates=data.cfg.eval.replicates)
    subsets = data.subsets()
    agents = np.array([r.instance_token for r in records])
    scenes = np.array([r.scene_name for r in records])
    summary = {
        "split": data.val.split,
        "version": data.val.dataset.targets.version,
        "dataroot": data.source.dataroot,
        "targets": len(records),
        "agents": len(set(agents)),
        "scenes": len(set(scenes)),
        "interval": "95 %: scenes and training seeds resampled (eval/bootstrap.py)",
        "decoding": {k: getattr(data.cfg.model, k) for k in DECODING_OPTIONS},
        "subsets": {
            s: {
                "targets": int(m.sum()),
                "agents": int(len(set(agents[m]))),
                "scenes": int(len(set(scenes[m]))),
                "title": title,
            }
            for s, (m, title) in subsets.items()
        },
        "seeds": dict(seeds),
        "metrics": {},
    }
    for subset, (mask, _) in subsets.items():
        if not mask.any():
            continue
        block = summary["metrics"][subset] = {}
        for label, values in per_target.items():
            block[label] = {k: boot.mean(v, mask).as_list() for k, v in values.items()}
            runs = per_seed(values["MinFDEK_1"])
            if len(runs) > 1:
                block[label]["MinFDEK_1_seed_sd"] = float(np.std(runs[:, mask].mean(1), ddof=1))
    with_past = subsets["with_past"][0]
    summary["primary"] = primary(boot, per_target, with_past, data.cfg.eval.primary_pair)
    summary["comparisons"] = compare(boot, per_target, with_past, data.methods)
    return summary


def primary(
    boot: SceneBootstrap, per_target: dict, mask: np.ndarray, pair: tuple[str, str]
) -> dict | None:
    """The comparison declared before the run: A's relative gain over B on minFDE_1, targets
    with a past, with its interval and half-width; None where the run lacks A or B."""
    la, lb = _label(pair[0]), _label(pair[1])
    if la not in per_target or lb not in per_target or not mask.any():
        return None
    gain = boot.relative_gain(per_target[la]["MinFDEK_1"], per_target[lb]["MinFDEK_1"], mask)
    return {
        "comparison": f"{la} vs {lb}",
        "metric": "MinFDEK_1",
        "subset": "with_past",
        "gain": gain.as_list(),
        "half_width": gain.half_width,
    }


def _label(name: str) -> str:
    return METHODS[name].label if name in METHODS else name


def compare(boot: SceneBootstrap, per_target: dict, mask: np.ndarray, methods) -> dict:
    """Exploratory paired comparisons on the targets with a past (relative gains, lower is
    better), and the share of each diagnostic's gain over a non-visual method that a visual
    model captures."""
    out = {}
    pairs = comparison_pairs(methods)
    for a, b in pairs:
        la, lb = _label(a), _label(b)
        out[f"{la} vs {lb}"] = {
            k: boot.relative_gain(per_target[la][k], per_target[lb][k], mask).as_list()
            for k in COMPARED
        }
    visual = [a for a, b in pairs if METHODS.get(a) and METHODS[a].visual and b != BASELINE]
    for diag, blind in ((a, b) for a, b in pairs if METHODS[a].role == "diagnostic"):
        for model in dict.fromkeys(v for v in visual):
            la, lb, lc = _label(model), _label(blind), _label(diag)
            # One share per non-visual method: the oracle's gain over history-only is the
            # issue's measure; over a peer (MTP, CoverNet) it is another number.
            name = f"share of the {_short(diag)}'s gain over {lb} captured by {_short(model)}"
            out[name] = {
                k: boot.ratio_of_differences(
                    per_target[la][k], per_target[lb][k], per_target[lc][k], mask
                ).as_list()
                for k in ("MinADEK_1", "MinFDEK_1")
            }
    return out


def _short(name: str) -> str:
    """A method's name as the share's title says it (scene_state_oracle → scene state oracle,
    xmem → XMem)."""
    return {"xmem": "XMem"}.get(name, name.replace("_", " "))


def _heading(summary: dict) -> str:
    """The report's first line: what was scored, how, and how the learned models decoded."""
    line = (
        f"{summary['version']} {summary['split']}: {summary['targets']} targets of "
        f"{summary['agents']} agents in {summary.get('scenes', '?')} scenes (devkit metric "
        "names, global frame, metres; learned models: mean over their seeds; [95 % "
        "interval: scenes and training seeds resampled])"
    )
    decoding = summary.get("decoding")  # (summaries written before it was recorded: none)
    if decoding:
        line += "; learned models decoded with " + ", ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in decoding.items()
        )
    return line


def format_report(
    summary: dict,
    names=(
        "MinADEK_1",
        "MinFDEK_1",
        "MissRateTopK_2_1",
        "MinADEK_5",
        "MinFDEK_5",
        "MissRateTopK_2_5",
        "MinADEK_10",
        "MinFDEK_10",
        "MissRateTopK_2_10",
        "OffRoadRate",
    ),
) -> str:
    """Markdown tables: value [95 % interval: scenes and seeds resampled] per subset, then the
    comparisons."""
    seeds = summary.get("seeds", {})
    lines = [_heading(summary)]
    lines += _primary_lines(summary.get("primary"))
    for subset, block in summary["metrics"].items():
        info = summary["subsets"][subset]
        shown = [n for n in names if n in next(iter(block.values()))]
        if subset not in MAIN_SUBSETS:  # the world's classes: a compact table
            shown = ["MinADEK_1", "MinFDEK_1", "MissRateTopK_2_1", "MinFDEK_5"]
        lines += [
            "",
            f"**{info.get('title', subset)}**: {info['targets']} targets, {info['agents']} agents",
            "",
            "| method | seeds | " + " | ".join(shown) + " |",
            "|---|---|" + "---|" * len(shown),
        ]
        for label, m in block.items():
            cells = [f"{m[n][0]:.3f} [{m[n][1]:.2f}, {m[n][2]:.2f}]" for n in shown]
            sd = (
                f" (minFDE_1 sd over seeds {m['MinFDEK_1_seed_sd']:.3f})"
                if "MinFDEK_1_seed_sd" in m
                else ""
            )
            lines.append(f"| {label}{sd} | {seeds.get(label, '—')} | " + " | ".join(cells) + " |")
    if summary["comparisons"]:
        lines += [
            "",
            "**exploratory, paired, targets with a past** (relative gain of the first "
            "over the second; [95 % interval])",
            "",
        ]
        for name, values in summary["comparisons"].items():
            cells = ", ".join(
                f"{k} {100 * v[0]:+.1f}% [{100 * v[1]:+.1f}, {100 * v[2]:+.1f}]"
                for k, v in values.items()
            )
            lines.append(f"- {name}: {cells}")
    return "\n".join(lines)


def _primary_lines(entry: dict | None) -> list[str]:
    if entry is None:
        return ["", "**primary comparison**: not in this run (it lacks one of its methods)"]
    v, lo, hi = entry["gain"]
    return [
        "",
        f"**primary comparison (declared before the run)**: {entry['comparison']}, "
        f"minFDE_1 on the targets with a past: {100 * v:+.1f} % [{100 * lo:+.1f}, "
        f"{100 * hi:+.1f}] (half-width {100 * entry['half_width']:.1f} %); every other "
        "comparison below is exploratory",
    ]


__all__ = [
    "BASELINE",
    "COMPARED",
    "compare",
    "comparison_pairs",
    "format_report",
    "primary",
    "summarize",
]
