"""On-disk cache of frozen-XMem features per (dataset split, XMem weights, feature config).

Entries are cache.py's (<cache_root>/features/<key>/{manifest.json, arrays.npz}, verified,
atomic). The key hashes everything that changes the numbers (target list with their windows,
image size, XMem weights' content hash, feature kinds, XMem config, format version), so a
changed config or checkpoint never reuses stale features. Extraction runs one XMem video per
camera window (all targets of the window as objects) on the device it is given; the manifest
records that device.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..atomic import file_lock, write_dir_atomically
from ..cache import CorruptEntry, entry_key, file_sha256, read_entry, save_entry
from ..data.agent_dataset import NuScenesAgentDataset
from ..data.videos import videos
from . import extraction
from .backbone import XMemBackbone

log = logging.getLogger(__name__)

FORMAT_VERSION = 4  # 2: manifests carry shapes, dtypes, checksum; 3: folded-BN inference copy;
#                    4: entries of cache.py (arrays.npz)


def weights_fingerprint(path: str | None, seed: int = 0) -> str:
    """sha256 of a checkpoint file's bytes, or a tag for the seeded random init."""
    if not path:
        return f"random-init:seed={seed}:recipe=1"
    return "sha256:" + file_sha256(Path(path))


@dataclass(frozen=True)
class FeatureSpec:
    features: tuple[str, ...]
    xmem_config: tuple[tuple[str, object], ...]
    weights: str
    masks: str
    precision: str
    view: str
    crop_size: int

    @classmethod
    def of(cls, backbone: XMemBackbone, weights: str, view: str, crop_size: int) -> "FeatureSpec":
        return cls(
            tuple(backbone.features),
            tuple(sorted(backbone.xmem_config.items())),
            weights,
            backbone.masks,
            backbone.precision,
            view,
            crop_size if view == "agent" else 0,
        )


def cache_key(ds: NuScenesAgentDataset, spec: FeatureSpec) -> tuple[str, dict]:
    return entry_key({"format": FORMAT_VERSION, "dataset": ds.fingerprint(), "spec": asdict(spec)})


FEATURE_ARRAYS = {"features", "valid"}


def load_or_extract(
    ds: NuScenesAgentDataset,
    backbone: XMemBackbone,
    weights: str,
    cache_root: str | Path,
    *,
    videos_per_step: int = 8,
    view: str = "frame",
    crop_size: int = 112,
    num_workers: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """features (N, T, C) float32 and valid (N, T) bool for every target of ds, in order.

    A verified entry is read; a missing one is extracted on `device` (the backbone is moved
    there), and an incomplete or corrupt one rebuilt (one log line says why). Processes
    building the same entry wait for each other (a lock file): under DDP, rank 0 prepares
    before the other ranks start, and they read its entry.
    """
    key, ident = cache_key(ds, FeatureSpec.of(backbone, weights, view, crop_size))
    folder = Path(cache_root) / "features" / key
    with file_lock(
        Path(cache_root) / "locks" / f"features-{key}.lock",
        waiting=lambda: log.warning("waiting for another process building %s", folder),
    ):
        try:
            arrays = read_entry(folder, key, ident, len(ds), FEATURE_ARRAYS)
            log.info("feature cache hit %s (%s)", key, ds.split)
            return arrays
        except CorruptEntry as why:
            if folder.exists():
                log.warning("feature cache entry %s is %s; rebuilding it", folder, why)
                shutil.rmtree(folder)
        _extract_entry(
            ds,
            backbone,
            folder,
            key,
            ident,
            videos_per_step=videos_per_step,
            view=view,
            crop_size=crop_size,
            num_workers=num_workers,
            device=device,
            progress=progress,
        )
    return read_entry(folder, key, ident, len(ds), FEATURE_ARRAYS)


def _extract_entry(
    ds: NuScenesAgentDataset,
    backbone: XMemBackbone,
    folder: Path,
    key: str,
    ident: dict,
    *,
    videos_per_step: int,
    view: str,
    crop_size: int,
    num_workers: int,
    device,
    progress: bool,
) -> None:
    groups = videos(ds.records, view)
    backbone.to(device)  # XMem runs on the run's device
    t0 = time.time()
    got = extraction.extract_groups(
        backbone,
        ds,
        groups,
        videos_per_step=videos_per_step,
        crop_size=crop_size,
        num_workers=num_workers,
        device=device,
        progress=progress,
        desc=f"XMem features {ds.split} ({view})",
    )
    n, (f0, v0) = len(ds), next(iter(got.values()))
    feats = np.zeros((n, *f0.shape), np.float32)
    valid = np.zeros((n, *v0.shape), bool)
    for i, (f, v) in got.items():
        feats[i], valid[i] = f, v
    manifest = {
        "format": FORMAT_VERSION,
        "key": key,
        "identity": ident,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "seconds": time.time() - t0,
        "windows": len(groups),
        "feature_kinds": list(backbone.features),
        "device": str(torch.device(device)),
    }
    write_dir_atomically(
        folder, lambda d: save_entry(d, manifest, {"features": feats, "valid": valid})
    )
    log.info(
        "cached %d targets (%d windows) in %.1fs → %s", n, len(groups), time.time() - t0, folder
    )


__all__ = ["FORMAT_VERSION", "FeatureSpec", "cache_key", "load_or_extract", "weights_fingerprint"]
