"""Regenerates docs/synthetic_frames.png: synthetic camera windows with the agents' init masks
(devkit-recipe projection) drawn over them.

    python docs/make_figure.py [--dataroot DIR]   # default: a fresh 3-scene synthetic set
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from xmem_traj.synth import generate, version_of
from xmem_traj.data.agent_dataset import NuScenesAgentDataset
from xmem_traj.data.videos import group_video, group_windows

COLOURS = np.array([[255, 40, 40], [40, 220, 40], [60, 120, 255], [255, 0, 255], [0, 230, 230]])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataroot")
    p.add_argument("--out", default=str(Path(__file__).with_name("synthetic_frames.png")))
    args = p.parse_args()
    root = args.dataroot or generate(tempfile.mkdtemp(), scenes=3, seed=1)
    ds = NuScenesAgentDataset.from_nuscenes(root, version_of(root), "mini_train", image_size=None)
    groups = sorted(group_windows(ds.records), key=lambda g: -len(g.items))[:4]
    tiles = []
    for g in groups:
        video = group_video(ds.records, g, None)
        t = int(video["init_frames"].max())
        img = video["frames"][t].permute(1, 2, 0).numpy() * 255
        for i, m in enumerate(video["init_masks"].numpy()):
            img[m] = 0.55 * img[m] + 0.45 * COLOURS[i % len(COLOURS)]
        tiles.append(img.astype(np.uint8))
    h, w = tiles[0].shape[:2]
    canvas = np.zeros((2 * h, 2 * w, 3), np.uint8)
    for i, tile in enumerate(tiles):
        canvas[(i // 2) * h:(i // 2 + 1) * h, (i % 2) * w:(i % 2 + 1) * w] = tile
    Image.fromarray(canvas).resize((w, h)).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
