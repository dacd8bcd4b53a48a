"""Keyed, verified, atomic cache entries of numpy arrays: what the prepare stage builds once
(XMem features, map rasters) and every later run reads.

An entry is `<root>/<kind>/<key>/{arrays.npz, manifest.json}`. The key hashes an identity
dict (everything that changes the numbers: the targets, the inputs' settings, the content of
the files read, a format version), so a changed input never reuses a stale entry. Arrays are a
plain .npz read with allow_pickle=False; the manifest records the identity, the arrays' names,
shapes and dtypes and the file's sha256, and is written last, so an entry is complete only
once it exists; entries appear atomically (a temporary folder renamed into place). An entry
that fails any check is rebuilt, with one log line saying why.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from .atomic import file_lock, write_dir_atomically

log = logging.getLogger(__name__)

ARRAYS_FILE = "arrays.npz"


class CorruptEntry(Exception):
    """A cache entry that must not be trusted; the message says why."""


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def entry_key(identity: dict) -> tuple[str, dict]:
    """The key of an identity, and the identity as its manifest stores it (JSON types)."""
    ident = json.loads(json.dumps(identity, sort_keys=True, default=str))
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:24], ident


def save_entry(folder: Path, manifest: dict, arrays: dict[str, np.ndarray]) -> None:
    """arrays.npz, then manifest.json with the arrays' names, shapes, dtypes and checksum."""
    np.savez(folder / ARRAYS_FILE, **arrays)
    manifest = {
        **manifest,
        "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
        "sha256": file_sha256(folder / ARRAYS_FILE),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))


def load_arrays(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / ARRAYS_FILE, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def read_entry(
    folder: Path, key: str, ident: dict, rows: int, names: set[str] | None = None
) -> dict[str, np.ndarray]:
    """The arrays of a complete entry whose manifest matches its key, identity, checksum and
    the arrays' names (`names`, if given), shapes, dtypes and row count; CorruptEntry
    otherwise."""
    path = folder / "manifest.json"
    if not path.exists():
        raise CorruptEntry("incomplete (no manifest.json)")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptEntry(f"manifest.json unreadable ({err})") from None
    if manifest.get("key") != key or manifest.get("identity") != ident:
        raise CorruptEntry("its manifest does not match its key")
    if not (folder / ARRAYS_FILE).exists():
        raise CorruptEntry(f"{ARRAYS_FILE} is missing")
    if file_sha256(folder / ARRAYS_FILE) != manifest.get("sha256"):
        raise CorruptEntry(f"{ARRAYS_FILE} does not match the checksum in its manifest")
    try:
        arrays = load_arrays(folder)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise CorruptEntry(f"{ARRAYS_FILE} unreadable ({err})") from None
    expected = manifest.get("arrays", {})
    got = {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()}
    if got != expected or (names is not None and set(got) != names):
        raise CorruptEntry(f"arrays {got} differ from the manifest's {expected}")
    if any(v.shape[0] != rows for v in arrays.values()):
        raise CorruptEntry(f"holds {next(iter(arrays.values())).shape[0]} rows for {rows} targets")
    return arrays


def cached_arrays(
    root: Path,
    kind: str,
    identity: dict,
    rows: int,
    build: Callable[[], dict[str, np.ndarray]],
    *,
    describe: str = "",
) -> dict[str, np.ndarray]:
    """The arrays of the entry for `identity` under root/kind: read when complete and
    verified, else built by `build()` (under a lock shared by processes) and written."""
    key, ident = entry_key(identity)
    folder = Path(root) / kind / key
    lock = Path(root) / "locks" / f"{kind}-{key}.lock"
    with file_lock(
        lock, waiting=lambda: log.warning("waiting for another process building %s", folder)
    ):
        try:
            arrays = read_entry(folder, key, ident, rows)
            log.info("%s cache hit %s %s", kind, key, describe)
            return arrays
        except CorruptEntry as why:
            if folder.exists():
                log.warning("%s cache entry %s is %s; rebuilding it", kind, folder, why)
                shutil.rmtree(folder)
        t0 = time.time()
        arrays = build()
        manifest = {
            "key": key,
            "identity": ident,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "seconds": round(time.time() - t0, 3),
        }
        write_dir_atomically(folder, lambda d: save_entry(d, manifest, arrays))
        return read_entry(folder, key, ident, rows)


__all__ = [
    "ARRAYS_FILE",
    "CorruptEntry",
    "cached_arrays",
    "entry_key",
    "file_sha256",
    "load_arrays",
    "read_entry",
    "save_entry",
]
