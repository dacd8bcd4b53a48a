"""Loader throughput: items/s of NuScenesAgentDataset through a DataLoader with workers.

    python bench/data_bench.py [--dataroot DIR] [--workers 0 2] [--frames keyframes]
Without --dataroot a synthetic nuScenes is generated into a temporary folder first.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from torch.utils.data import DataLoader

from xmem_traj.data.agent_dataset import NuScenesAgentDataset, collate_agents
from xmem_traj.data.tables import version_of
from xmem_traj.synth import generate
from xmem_traj.synth.render import CAMERAS


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dataroot", help="nuScenes folder (default: generate a synthetic one)")
    p.add_argument("--version", help="default: detected")
    p.add_argument("--split", default="mini_train")
    p.add_argument("--frames", default="keyframes", choices=["keyframes", "sweeps"])
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--image-size", type=int, nargs=2, default=[144, 256], metavar=("H", "W"))
    args = p.parse_args()
    root = args.dataroot
    if root is None:
        root = tempfile.mkdtemp(prefix="xmem-traj-bench-")
        t0 = time.time()
        generate(
            root,
            scenes=4,
            seed=0,
            sweeps=args.frames == "sweeps",
            cameras=("CAM_FRONT", "CAM_BACK") if args.frames == "sweeps" else CAMERAS,
        )
        print(f"generated a synthetic nuScenes (4 scenes) in {time.time() - t0:.1f}s at {root}")
    t0 = time.time()
    ds = NuScenesAgentDataset.from_nuscenes(
        root,
        args.version or version_of(root),
        args.split,
        frames=args.frames,
        image_size=tuple(args.image_size),
    )
    print(
        f"indexed {len(ds)} targets in {time.time() - t0:.2f}s ({args.frames}, "
        f"{ds.window_len} frames of {args.image_size[0]}×{args.image_size[1]})"
    )
    print("| workers | items/s | frames/s |\n|---|---|---|")
    for workers in args.workers:
        loader = DataLoader(
            ds, batch_size=args.batch_size, num_workers=workers, collate_fn=collate_agents
        )
        t0, n = time.time(), 0
        for batch in loader:
            n += batch["frames"].shape[0]
        dt = time.time() - t0
        print(f"| {workers} | {n / dt:.1f} | {n * ds.window_len / dt:.0f} |")


if __name__ == "__main__":
    main()
