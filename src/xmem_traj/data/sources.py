"""Which nuScenes a config reads: the user's dataroot, or the synthetic default generated once
into the cache; its version and the train/val challenge splits."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..atomic import file_lock, write_dir_atomically
from ..config import TrainConfig
from ..synth import WORLD_VERSION, generate, version_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataSource:
    dataroot: str
    version: str
    train_split: str
    val_split: str


def synthetic_dataroot(cfg: TrainConfig, report: Callable[[str], None] = log.info) -> Path:
    """The default data: a synthetic nuScenes in the cache, generated once (atomically)."""
    cache = cfg.resolved_cache_dir()
    counts = (cfg.synth_train_scenes, cfg.synth_train_val_scenes, cfg.synth_val_scenes)
    root = cache / "synthetic" / (f"world{WORLD_VERSION}-{'-'.join(map(str, counts))}"
                                  f"-stride{cfg.synth_target_stride}-seed{cfg.synth_seed}")
    done = root / "maps" / "prediction" / "prediction_scenes.json"
    if done.exists():
        return root
    with file_lock(cache / "locks" / f"synthetic-{root.name}.lock",
                   waiting=lambda: report(f"waiting for another process generating {root} …")):
        if not done.exists():  # (or the process we waited for made it)
            report(f"generating the synthetic nuScenes ({sum(counts)} scenes: {counts[0]} train, "
                   f"{counts[1]} train_val, {counts[2]} val) into {root} …")
            write_dir_atomically(root, lambda tmp: generate(
                tmp, scenes=counts, seed=cfg.synth_seed, target_stride=cfg.synth_target_stride,
                progress=(lambda msg: report("  " + msg)) if cfg.progress else None))
    return root


def resolve_source(cfg: TrainConfig, report: Callable[[str], None] = log.info) -> DataSource:
    """The dataroot (generating the synthetic default if needed), its version and splits."""
    dataroot = cfg.dataroot or str(synthetic_dataroot(cfg, report))
    version = cfg.version or version_of(dataroot)
    mini = "mini" in version
    return DataSource(dataroot, version, cfg.train_split or ("mini_train" if mini else "train"),
                      cfg.val_split or ("mini_val" if mini else "val"))


__all__ = ["DataSource", "resolve_source", "synthetic_dataroot"]
