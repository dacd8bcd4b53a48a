"""Main-job throughput, each comparison measured in one run on the same targets:

- XMem feature extraction, before (every window's frames decoded and key-encoded by its own
  video, the previous pipeline) and after (each camera frame decoded and key-encoded once,
  see traj/extraction.py): frames decoded / key-encoded and items/s;
- cached head training items/s, before (a per-item DataLoader with collation) and after
  (whole batches indexed out of the stacked tensors);
- with --default-run: the stage times of the default `xmem-traj train` (data, XMem features,
  heads, eval) in a fresh temporary cache.

    python bench/train_bench.py [--dataroot DIR] [--items 0] [--default-run]
"""
from __future__ import annotations

import argparse
import logging
import tempfile
import time

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from xmem_traj.config import TrainConfig
from xmem_traj.data.videos import FrameSource, group_video, group_windows
from xmem_traj.traj.batch import collate_traj
from xmem_traj.traj.datamodules import TrajDataModule
from xmem_traj.traj.extraction import ExtractionStats, extract_groups, plan_extraction
from xmem_traj.traj.predictor import TrajectoryPredictor
from xmem_traj.traj.targets import CachedTargets, EpochBatchSampler, EpochShuffleSampler


def extraction(cfg: TrainConfig, dm: TrajDataModule, items: list[int]) -> None:
    ds, backbone = dm.train_set, dm.backbone
    groups = group_windows(ds.records, items)
    plan = plan_extraction(ds, groups, cfg.videos_per_step, FrameSource(ds.records, ds.image_size, cfg.crop_size))
    t0 = time.time()
    with torch.no_grad():  # before: each chunk's videos decode and key-encode all their frames
        for chunk in plan.chunks:
            videos = [group_video(ds.records, g, ds.image_size) for g in chunk]
            backbone(torch.stack([v["frames"] for v in videos]), [v["init_masks"] for v in videos],
                     [v["init_frames"].tolist() for v in videos], [v["frame_masks"] for v in videos])
    before = time.time() - t0
    stats = ExtractionStats()
    t0 = time.time()
    extract_groups(backbone, ds, groups, videos_per_step=cfg.videos_per_step,
                   num_workers=cfg.num_workers, progress=False, stats=stats)
    after = time.time() - t0
    print(f"\nXMem features: {len(items)} targets in {len(groups)} windows, {cfg.videos_per_step} in "
          f"lockstep, precision {backbone.precision}, {cfg.image_height}×{cfg.image_width}")
    print("| pipeline | frames decoded | frames key-encoded | items/s |\n|---|---|---|---|")
    print(f"| every window's own frames (before) | {stats.video_frames} | {stats.video_frames} | "
          f"{len(items) / before:.2f} |")
    print(f"| each camera frame once (after) | {stats.decoded} | {stats.key_encoded} | "
          f"{len(items) / after:.2f} |")


class _PerItem(Dataset):
    """The cached targets served item by item (the previous loader)."""

    def __init__(self, data: CachedTargets):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict:
        return self.data[i]


def head_training(cfg: TrainConfig, dm: TrajDataModule, epochs: int) -> None:
    ds = dm.train_set
    dim = dm.feature_dim("xmem") or 647
    data = CachedTargets(ds, np.random.default_rng(0).normal(size=(len(ds), ds.window_len, dim)).astype(np.float32),
                         np.ones((len(ds), ds.window_len), bool))
    loaders = {
        "per-item DataLoader + collate (before)": DataLoader(
            _PerItem(data), batch_size=cfg.batch_size, sampler=EpochShuffleSampler(len(data), 0),
            collate_fn=collate_traj),
        "batches indexed from stacked tensors (after)": DataLoader(
            data, batch_sampler=EpochBatchSampler(EpochShuffleSampler(len(data), 0), cfg.batch_size,
                                                  drop_last=False), collate_fn=lambda b: b),
    }
    print(f"\ncached head training: {epochs} epochs of {len(data)} targets, batch {cfg.batch_size}, "
          f"head {cfg.head} {cfg.hidden}, {dim} features")
    print("| loader | items/s |\n|---|---|")
    for name, loader in loaders.items():
        model = TrajectoryPredictor.from_config(cfg, "xmem", feature_dim=dim,
                                                past_steps=ds.targets.past_steps,
                                                future_steps=ds.targets.future_steps, seed=cfg.seed)
        trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False)
        t0 = time.time()
        trainer.fit(model, loader)
        print(f"| {name} | {epochs * len(data) / (time.time() - t0):.0f} |")


def default_run() -> None:
    from xmem_traj.train import run_training
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(cache_dir=tmp + "/cache", run_dir=tmp + "/runs", progress=False).validate()
        t0 = time.time()
        run_training(cfg, report=print)
        print(f"\ndefault run: {time.time() - t0:.0f} s in all (fresh cache)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataroot", default="", help="nuScenes folder (default: the synthetic default data)")
    p.add_argument("--items", type=int, default=0, help="targets to extract features for (0: all)")
    p.add_argument("--epochs", type=int, default=5, help="epochs of cached head training")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--default-run", action="store_true", help="time the default main job's stages instead")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    if args.default_run:
        return default_run()
    cfg = TrainConfig(dataroot=args.dataroot, progress=False).validate()
    dm = TrajDataModule.from_config(cfg)
    items = list(range(min(args.items or len(dm.train_set), len(dm.train_set))))
    extraction(cfg, dm, items)
    head_training(cfg, dm, args.epochs)


if __name__ == "__main__":
    main()
