"""Files and folders that appear whole or not at all, locks between processes sharing a cache,
and the cleaning of temporary folders that a killed process left behind."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

log = logging.getLogger(__name__)

TMP_MARK = ".tmp-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def clean_stale_temporaries(parent: Path, name: str) -> None:
    """Remove `<name>.tmp-<pid>-*` siblings whose process is gone (a kill -9 mid-write)."""
    for tmp in Path(parent).glob(f"{name}{TMP_MARK}*"):
        try:
            pid = int(tmp.name[len(name) + len(TMP_MARK) :].split("-", 1)[0])
        except ValueError:
            pid = -1  # an old-style name without a pid: nobody can own it any more
        if pid != os.getpid() and (pid < 0 or not _pid_alive(pid)):
            log.info("removing %s, left behind by a process that died while writing it", tmp)
            shutil.rmtree(tmp, ignore_errors=True)


def write_dir_atomically(final: Path, write: Callable[[Path], None]) -> Path:
    """Call write(tmp) on a temporary sibling folder, then rename it to `final`. If `final`
    appeared meanwhile (another process won the race), the temporary folder is dropped."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(final.parent, final.name)
    tmp = Path(tempfile.mkdtemp(prefix=f"{final.name}{TMP_MARK}{os.getpid()}-", dir=final.parent))
    try:
        write(tmp)
        if final.exists():
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def write_file_atomically(final: Path, write: Callable[[Path], None]) -> Path:
    """Call write(tmp) on a temporary sibling file (same folder, so the same filesystem),
    flush it to disk, then rename it over `final`: a reader (or a kill, or a full disk) sees
    the old file or the new one, never part of one."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"{final.name}{TMP_MARK}{os.getpid()}-", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync(final.parent)
    return final


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def file_lock(path: Path, *, waiting: Callable[[], None] | None = None) -> Iterator[None]:
    """An exclusive lock between processes (flock on `path`, created if needed); released when
    the holder exits or dies. `waiting` is called once if another process holds it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting is not None:
                waiting()
            t0 = time.time()
            fcntl.flock(handle, fcntl.LOCK_EX)
            log.info("waited %.0fs for %s", time.time() - t0, path)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_locked(path: Path) -> bool:
    """Does another process hold file_lock(path) now?"""
    path = Path(path)
    if not path.exists():
        return False
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


__all__ = [
    "clean_stale_temporaries",
    "file_lock",
    "is_locked",
    "write_dir_atomically",
    "write_file_atomically",
]
