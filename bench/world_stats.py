"""What the synthetic world offers a camera: per challenge split the targets, agents and the
share of targets per class of upcoming behaviour (foretold by a seen cue / no cue seen / under
way / no change), and over all agents the manoeuvres, how often they were cued, the cues' lead
over the motion and the misleading cues.

    python bench/world_stats.py [--dataroot DIR]     (default: the default synthetic dataset)
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from xmem_traj.config import TrainConfig
from xmem_traj.data.agent_dataset import NuScenesAgentDataset
from xmem_traj.data.tables import load_nuscenes
from xmem_traj.data.sources import resolve_source
from xmem_traj.errors import DatasetError
from xmem_traj.data.world_cues import CLASSES, WorldCues, class_counts, cue_statistics
from xmem_traj.synth.vehicles import CUE_SOURCES


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataroot", default="", help="a synthetic dataroot (default: the default one)")
    p.add_argument("--json", help="also write the numbers here")
    args = p.parse_args()
    cfg = TrainConfig.of(dataroot=args.dataroot, progress=False)
    source = resolve_source(cfg.data, cfg.world, progress=False, report=print)
    cues = WorldCues.load(source.dataroot, source.version)
    if cues is None:
        raise SystemExit(f"{source.dataroot} has no side file: not a synthetic world")
    nusc = load_nuscenes(source.dataroot, source.version)
    out = {"splits": {}}
    print(f"{source.dataroot}\n\n| split | targets | agents | with a past | "
          + " | ".join(CLASSES) + " |\n|---|---|---|---|" + "---|" * len(CLASSES))
    for split in ("train", "train_val", "val"):
        try:
            ds = NuScenesAgentDataset.from_config(cfg.data, source.dataroot, source.version, split,
                                                  image_size=None, nusc=nusc)
        except DatasetError:        # a split the world has no scenes (or targets) for
            print(f"| {split} | 0 | 0 | 0 |" + " — |" * len(CLASSES))
            continue
        with_past = [r for r in ds.records if len(r.past)]
        counts = class_counts(cues, with_past)
        agents = len({r.instance_token for r in ds.records})
        out["splits"][split] = {"targets": len(ds), "agents": agents, "with_past": len(with_past), **counts}
        print(f"| {split} | {len(ds)} | {agents} | {len(with_past)} | "
              + " | ".join(f"{counts[c]} ({100 * counts[c] / max(len(with_past), 1):.0f}%)" for c in CLASSES) + " |")
    stats = cue_statistics(cues)
    out["manoeuvres"] = stats
    print("\n| manoeuvre | count | with a cue | earliest cue's lead over the motion, median [p10, p90] s |"
          "\n|---|---|---|---|")
    for kind, s in stats.items():
        lead = (f"{s['lead_s_median']:+.2f} [{s['lead_s_p10_p90'][0]:+.2f}, {s['lead_s_p10_p90'][1]:+.2f}]"
                if s["lead_s_median"] is not None else "—")
        print(f"| {kind} | {s['count']} | {100 * s['cued_share']:.0f}% | {lead} |")
    vehicles = [a for a in cues.agents.values() if a["category"].startswith("vehicle") and not a["parked"]]
    mis = [m for a in vehicles for m in a.get("misleading", [])]
    kinds = {k: sum(m[0].startswith(k) for m in mis) for k in ("brake", "indicator")}
    cued = sum(bool(m["cues"]) for a in vehicles for m in a["manoeuvres"])
    out["misleading"] = {"vehicles": len(vehicles), **kinds, "cued_manoeuvres": cued}
    print(f"\nmisleading cues (no manoeuvre follows): {kinds['brake']} brake taps and {kinds['indicator']} "
          f"indicators on {len(vehicles)} moving vehicles, against {cued} cued manoeuvres "
          f"({100 * len(mis) / max(len(mis) + cued, 1):.0f}% of all cues mislead)")
    print("\nsources of the rates:\n" + "\n".join(f"- {k}: {v}" for k, v in CUE_SOURCES.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
