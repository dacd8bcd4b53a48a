"""Main-job throughput, measured in one run on the same targets:
- feature extraction items/s, per-item XMem runs (the seed sketch: one video per target, one
  at a time) vs batched multi-object runs (one video per camera window, several in lockstep);
- cached training items/s of the head (one epoch over cached features).

    python bench/train_bench.py [--dataroot DIR] [--items 48]
"""
from __future__ import annotations

import argparse
import tempfile
import time

import lightning as L
import torch

from xmem_traj.config import TrainConfig
from xmem_traj.data.videos import group_windows, single_videos
from xmem_traj.traj.batch import collate_traj
from xmem_traj.traj.datamodules import TrajDataModule
from xmem_traj.traj.feature_cache import extract_groups
from xmem_traj.traj.predictor import TrajectoryPredictor
from xmem_traj.traj.targets import CachedTargets


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataroot", default="", help="nuScenes folder (default: the synthetic default data)")
    p.add_argument("--items", type=int, default=0, help="targets to extract features for (0: all)")
    p.add_argument("--videos-per-step", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = TrainConfig(dataroot=args.dataroot, progress=False).validate()
    dm = TrajDataModule.from_config(cfg)
    train_set, backbone = dm.train_set, dm.backbone
    items = list(range(min(args.items or len(train_set), len(train_set))))
    print(f"{len(items)} targets of {train_set.version}/{train_set.split}, "
          f"{cfg.image_height}×{cfg.image_width}, {train_set.window_len} frames, features {cfg.features}")

    singles = single_videos(train_set.records, items)
    t0 = time.time()
    extract_groups(backbone, train_set, singles, videos_per_step=1, progress=False)
    per_item = len(items) / (time.time() - t0)
    groups = group_windows(train_set.records, items)
    t0 = time.time()
    extract_groups(backbone, train_set, groups, videos_per_step=args.videos_per_step, progress=False)
    batched = len(items) / (time.time() - t0)
    print("| feature extraction | videos | items/s |\n|---|---|---|")
    print(f"| per-item XMem runs (seed sketch) | {len(singles)} | {per_item:.2f} |")
    print(f"| multi-object windows, {args.videos_per_step} in lockstep | {len(groups)} | {batched:.2f} |")

    feats = torch.randn(len(train_set), train_set.window_len, backbone.feature_dim).numpy()
    valid = torch.ones(len(train_set), train_set.window_len, dtype=torch.bool).numpy()
    data = CachedTargets(train_set, feats, valid)
    model = TrajectoryPredictor.from_config(cfg, "xmem", feature_dim=backbone.feature_dim,
                                            past_steps=train_set.targets.past_steps,
                                            future_steps=train_set.targets.future_steps, seed=cfg.seed)
    loader = torch.utils.data.DataLoader(data, batch_size=cfg.batch_size, shuffle=True, collate_fn=collate_traj)
    trainer = L.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    t0 = time.time()
    trainer.fit(model, loader)
    print(f"\ncached training: {3 * len(data) / (time.time() - t0):.0f} items/s "
          f"(3 epochs of {len(data)} targets, batch {cfg.batch_size})")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory():
        main()
