"""Which nuScenes a config reads: the user's dataroot, or the synthetic default generated once
into the cache; its version and the train/val challenge splits."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..atomic import file_lock, write_dir_atomically
from ..config import DataConfig, WorldConfig
from .tables import version_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataSource:
    dataroot: str
    version: str
    train_split: str
    val_split: str


def synthetic_dataroot(
    world: WorldConfig,
    cache: Path,
    *,
    progress: bool = True,
    report: Callable[[str], None] = log.info,
) -> Path:
    """The default data: a synthetic nuScenes in the cache, generated once (atomically)."""
    from ..synth import WORLD_VERSION, generate

    counts = world.scene_counts
    root = (
        cache
        / "synthetic"
        / (
            f"world{WORLD_VERSION}-{'-'.join(map(str, counts))}"
            f"-stride{world.synth_target_stride}-seed{world.synth_seed}"
        )
    )
    done = root / "maps" / "prediction" / "prediction_scenes.json"
    if done.exists():
        return root
    with file_lock(
        cache / "locks" / f"synthetic-{root.name}.lock",
        waiting=lambda: report(f"waiting for another process generating {root} …"),
    ):
        if not done.exists():  # (or the process we waited for made it)
            report(
                f"generating the synthetic nuScenes ({sum(counts)} scenes: {counts[0]} train, "
                f"{counts[1]} train_val, {counts[2]} val) into {root} …"
            )
            write_dir_atomically(
                root,
                lambda tmp: generate(
                    tmp,
                    scenes=counts,
                    seed=world.synth_seed,
                    target_stride=world.synth_target_stride,
                    progress=(lambda msg: report("  " + msg)) if progress else None,
                ),
            )
    return root


def resolve_source(
    data: DataConfig,
    world: WorldConfig,
    *,
    progress: bool = True,
    report: Callable[[str], None] = log.info,
) -> DataSource:
    """The dataroot (generating the synthetic default if needed), its version and splits."""
    dataroot = data.dataroot or str(
        synthetic_dataroot(world, data.resolved_cache_dir(), progress=progress, report=report)
    )
    version = data.version or version_of(dataroot)
    mini = "mini" in version
    return DataSource(
        dataroot,
        version,
        data.train_split or ("mini_train" if mini else "train"),
        data.val_split or ("mini_val" if mini else "val"),
    )


__all__ = ["DataSource", "resolve_source", "synthetic_dataroot"]
