"""What the synthetic (SUMO) world offers a camera: per challenge split the targets, agents and
the share of targets with a past per class of upcoming behaviour (foretold by a cause or cue
seen in the window / not foretold / under way / no change), per cause (signal, leader, yield,
own plan, none) with the share whose cause a window frame showed; over all annotated vehicles
the manoeuvres, their causes, how often they were cued and the cues' lead over the motion, and
the misleading cues; with --calibrate, the drivers measured against the cited field values.

    python bench/world_stats.py [--dataroot DIR] [--json FILE] [--calibrate]
        (default dataroot: the default synthetic dataset of the main job)
"""

from __future__ import annotations

import argparse
import json

from xmem_traj.config import TrainConfig
from xmem_traj.data.agent_dataset import NuScenesAgentDataset
from xmem_traj.data.sources import resolve_source
from xmem_traj.data.tables import load_nuscenes
from xmem_traj.data.world_file import CAUSES, CLASSES, WorldFile
from xmem_traj.data.world_summary import (
    cause_table,
    class_counts,
    manoeuvre_statistics,
    misleading_statistics,
)
from xmem_traj.errors import DatasetError


def _pct(n: int, total: int) -> str:
    return f"{n} ({100 * n / max(total, 1):.0f}%)"


def split_tables(cfg: TrainConfig, source, world: WorldFile, nusc) -> dict:
    """Per split: targets, agents, with a past, class counts and the cause table."""
    out = {}
    print(
        "| split | targets | agents | with a past | "
        + " | ".join(CLASSES)
        + " |\n|---|---|---|---|"
        + "---|" * len(CLASSES)
    )
    rows = []
    for split in ("train", "train_val", "val"):
        try:
            ds = NuScenesAgentDataset.from_config(
                cfg.data, source.dataroot, source.version, split, image_size=None, nusc=nusc
            )
        except DatasetError:  # a split the world has no scenes (or targets) for
            print(f"| {split} | 0 | 0 | 0 |" + " — |" * len(CLASSES))
            continue
        with_past = [r for r in ds.records if len(r.past)]
        counts, causes = class_counts(world, with_past), cause_table(world, with_past)
        agents = len({r.instance_token for r in ds.records})
        out[split] = {
            "targets": len(ds),
            "agents": agents,
            "with_past": len(with_past),
            "classes": counts,
            "causes": causes,
        }
        print(
            f"| {split} | {len(ds)} | {agents} | {len(with_past)} | "
            + " | ".join(_pct(counts[c], len(with_past)) for c in CLASSES)
            + " |"
        )
        rows.append((split, len(with_past), causes))
    print(
        "\ntargets with a past by the cause of their next (or ongoing) manoeuvre (none: no "
        "manoeuvre within the horizon, or one without a cause); in brackets: "
        "those whose cause a window frame showed to the target's camera\n\n| split | "
        + " | ".join(CAUSES)
        + " |\n|---|"
        + "---|" * len(CAUSES)
    )
    for split, n, causes in rows:
        print(
            f"| {split} | "
            + " | ".join(
                f"{_pct(causes[c]['targets'], n)} [{causes[c]['cause_visible']}]" for c in CAUSES
            )
            + " |"
        )
    return out


def manoeuvre_table(world: WorldFile) -> dict:
    stats = manoeuvre_statistics(world)
    print(
        "\n| manoeuvre | count | causes | with a cue | earliest cue's lead over the motion, "
        "median [p10, p90] s |\n|---|---|---|---|---|"
    )
    for kind, s in stats.items():
        lead = (
            f"{s['lead_s_median']:+.2f} "
            f"[{s['lead_s_p10_p90'][0]:+.2f}, {s['lead_s_p10_p90'][1]:+.2f}]"
            if s["lead_s_median"] is not None
            else "—"
        )
        causes = ", ".join(f"{c} {n}" for c, n in s["causes"].items() if n)
        print(f"| {kind} | {s['count']} | {causes} | {100 * s['cued_share']:.0f}% | {lead} |")
    return stats


def calibration() -> dict:
    """The drivers against the field values: queue discharge (HCM) on the calibration scenario."""
    import numpy as np

    from xmem_traj.synth.calibration import queue_discharge, start_up_lost_time

    lost, saturation = np.mean(
        [start_up_lost_time(queue_discharge(seed=s)) for s in range(5)], axis=0
    )
    print(
        f"\nqueue discharge at green (5 runs): start-up lost time {lost:.2f} s (HCM 2010: 2.0 s), "
        f"saturation headway {saturation:.2f} s = {3600 / saturation:.0f} veh/h/lane (HCM: 1 900)"
    )
    return {"start_up_lost_time_s": float(lost), "saturation_headway_s": float(saturation)}


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dataroot", default="", help="a synthetic dataroot (default: the default one)")
    p.add_argument("--json", help="also write the numbers here")
    p.add_argument(
        "--calibrate", action="store_true", help="also measure the queue discharge (~10 s)"
    )
    args = p.parse_args()
    cfg = TrainConfig.of(dataroot=args.dataroot, progress=False)
    source = resolve_source(cfg.data, cfg.world, progress=False, report=print)
    world = WorldFile.load(source.dataroot, source.version)
    if world is None:
        raise SystemExit(f"{source.dataroot} has no side file: not a synthetic world")
    print(f"{source.dataroot}\n")
    out = {
        "splits": split_tables(cfg, source, world, load_nuscenes(source.dataroot, source.version)),
        "manoeuvres": manoeuvre_table(world),
        "misleading": misleading_statistics(world),
    }
    mis = out["misleading"]
    told = mis["brake"] + mis["indicator"]
    print(
        f"\nmisleading cues (no manoeuvre follows): {mis['brake']} brake taps and "
        f"{mis['indicator']} indicators on {mis['vehicles']} annotated vehicles, against "
        f"{mis['cued_manoeuvres']} cued manoeuvres "
        f"({100 * told / max(told + mis['cued_manoeuvres'], 1):.0f}% of all cues mislead)"
    )
    if args.calibrate:
        out["calibration"] = calibration()
    print("\nsources of the rates:")
    for table, entries in world.sources.items():
        print("\n".join(f"- {table} / {k}: {v}" for k, v in entries.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
