"""On-disk cache of frozen-XMem features per (dataset split, XMem weights, feature config).

Layout: <cache_root>/features/<key>/{manifest.json, features.npz}. The key hashes everything
that changes the numbers (target list with their windows, image size, XMem weights' content
hash, feature kinds, XMem config, format version), so a changed config or checkpoint never
reuses stale features. Arrays are plain .npz read with allow_pickle=False; an entry appears
atomically (written to a temporary folder, then renamed). Extraction runs one XMem video per
camera window (all targets of the window as objects), and can be sharded across DDP ranks.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..atomic import file_lock, write_dir_atomically
from ..data.agent_dataset import NuScenesAgentDataset
from ..data.videos import videos
from . import extraction
from .backbone import XMemBackbone

log = logging.getLogger(__name__)

FORMAT_VERSION = 3  # 2: manifests carry shapes, dtypes, checksum; 3: folded-BN inference copy


def weights_fingerprint(path: str | None, seed: int = 0) -> str:
    """sha256 of a checkpoint file's bytes, or a tag for the seeded random init."""
    if not path:
        return f"random-init:seed={seed}:recipe=1"
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


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
        return cls(tuple(backbone.features), tuple(sorted(backbone.xmem_config.items())), weights,
                   backbone.masks, backbone.precision, view, crop_size if view == "agent" else 0)


def dataset_fingerprint(ds: NuScenesAgentDataset) -> dict:
    h = hashlib.sha256()
    for r in ds.records:
        h.update("|".join([r.instance_token, r.sample_token, r.camera, str(r.init_frame),
                           *r.frame_tokens]).encode())
    t = ds.targets
    return {"dataroot": os.path.abspath(t.dataroot), "version": t.version, "split": t.split,
            "frames": t.frames, "image_size": list(ds.image_size or []),
            "history_s": t.history_s, "targets": len(ds.records), "targets_sha256": h.hexdigest()}


def cache_key(ds: NuScenesAgentDataset, spec: FeatureSpec) -> tuple[str, dict]:
    ident = {"format": FORMAT_VERSION, "dataset": dataset_fingerprint(ds),
             "spec": json.loads(json.dumps(asdict(spec), default=str))}
    key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:24]
    return key, ident


def _save_arrays(folder: Path, manifest: dict, arrays: dict[str, np.ndarray]) -> None:
    """features.npz, then manifest.json with the arrays' names, shapes, dtypes and checksum:
    an entry is complete only once its manifest exists."""
    np.savez(folder / "features.npz", **arrays)
    manifest = {**manifest, "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)}
                                       for k, v in arrays.items()},
                "sha256": _file_sha256(folder / "features.npz")}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _load_arrays(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "features.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


class CorruptEntry(Exception):
    """A cache entry that must not be trusted; the message says why."""


def read_entry(folder: Path, key: str, ident: dict, rows: int) -> dict[str, np.ndarray]:
    """The arrays of a complete entry whose manifest matches its key, identity, checksum and
    the arrays' names, shapes, dtypes and row count; CorruptEntry otherwise."""
    path = folder / "manifest.json"
    if not path.exists():
        raise CorruptEntry("incomplete (no manifest.json)")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptEntry(f"manifest.json unreadable ({err})") from None
    if manifest.get("key") != key or manifest.get("identity") != json.loads(json.dumps(ident, sort_keys=True)):
        raise CorruptEntry("its manifest does not match its key")
    if not (folder / "features.npz").exists():
        raise CorruptEntry("features.npz is missing")
    if _file_sha256(folder / "features.npz") != manifest.get("sha256"):
        raise CorruptEntry("features.npz does not match the checksum in its manifest")
    try:
        arrays = _load_arrays(folder)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise CorruptEntry(f"features.npz unreadable ({err})") from None
    expected = manifest.get("arrays", {})
    got = {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()}
    if got != expected or set(got) != {"features", "valid"}:
        raise CorruptEntry(f"arrays {got} differ from the manifest's {expected}")
    if any(v.shape[0] != rows for v in arrays.values()):
        raise CorruptEntry(f"holds {arrays['features'].shape[0]} rows for {rows} targets")
    return arrays


def load_or_extract(ds: NuScenesAgentDataset, backbone: XMemBackbone, weights: str,
                    cache_root: str | Path, *, rank: int = 0, world_size: int = 1,
                    barrier: Callable[[], None] = lambda: None, videos_per_step: int = 8,
                    view: str = "frame", crop_size: int = 112, num_workers: int = 0, device="cpu",
                    progress: bool = True) -> dict[str, np.ndarray]:
    """features (N, T, C) float32 and valid (N, T) bool for every target of ds, in order.

    A verified entry is read; a missing one is built, and an incomplete or corrupt one
    rebuilt (one log line says why). Processes building the same entry wait for each other
    (a lock file). With world_size > 1 each rank extracts every world_size-th window, writes
    its shard, and rank 0 merges them into the entry; all ranks then read it.
    """
    spec = FeatureSpec.of(backbone, weights, view, crop_size)
    key, ident = cache_key(ds, spec)
    folder = Path(cache_root) / "features" / key
    lock = file_lock(Path(cache_root) / "locks" / f"features-{key}.lock",
                     waiting=lambda: log.warning("waiting for another process building %s", folder))
    with lock if rank == 0 else contextlib.nullcontext():
        try:
            arrays = read_entry(folder, key, ident, len(ds))
            log.info("feature cache hit %s (%s)", key, ds.split)
            return arrays
        except CorruptEntry as why:
            if folder.exists():
                log.warning("feature cache entry %s is %s; rebuilding it", folder, why)
        if world_size > 1:
            barrier()  # every rank has decided before rank 0 removes a bad entry
        if rank == 0 and folder.exists():
            shutil.rmtree(folder)
        _extract_entry(ds, backbone, folder, key, ident, rank=rank, world_size=world_size,
                       barrier=barrier, videos_per_step=videos_per_step, view=view,
                       crop_size=crop_size, num_workers=num_workers, device=device, progress=progress)
    barrier()
    return read_entry(folder, key, ident, len(ds))


def _extract_entry(ds, backbone, folder: Path, key: str, ident: dict, *, rank: int,
                   world_size: int, barrier, videos_per_step: int, view: str, crop_size: int,
                   num_workers: int, device, progress: bool) -> None:
    groups = videos(ds.records, view)
    mine = groups[rank::world_size]
    t0 = time.time()
    got = extraction.extract_groups(
        backbone, ds, mine, videos_per_step=videos_per_step, crop_size=crop_size,
        num_workers=num_workers, device=device, progress=progress,
        desc=f"XMem features {ds.split} ({view})" + (f" [rank {rank}/{world_size}]" if world_size > 1 else ""))
    items = sorted(got)
    shard = {"items": np.array(items, dtype=np.int64),
             "features": np.stack([got[i][0] for i in items]).astype(np.float32),
             "valid": np.stack([got[i][1] for i in items])}
    shard_dir = folder.with_name(f"{key}.shards")
    if world_size > 1:
        write_dir_atomically(shard_dir / f"rank{rank}", lambda d: _save_arrays(d, {}, shard))
        barrier()
    if rank != 0:
        return
    shards = ([_load_arrays(shard_dir / f"rank{r}") for r in range(world_size)]
              if world_size > 1 else [shard])
    n, t_len, c = len(ds), shards[0]["features"].shape[1], shards[0]["features"].shape[2]
    feats = np.zeros((n, t_len, c), np.float32)
    valid = np.zeros((n, t_len), bool)
    for s in shards:
        feats[s["items"]] = s["features"]
        valid[s["items"]] = s["valid"]
    manifest = {"format": FORMAT_VERSION, "key": key, "identity": ident,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "seconds": time.time() - t0,
                "windows": len(groups), "feature_kinds": list(backbone.features)}
    write_dir_atomically(folder, lambda d: _save_arrays(d, manifest, {"features": feats, "valid": valid}))
    shutil.rmtree(shard_dir, ignore_errors=True)
    log.info("cached %d targets (%d windows) in %.1fs → %s", n, len(groups), time.time() - t0, folder)
