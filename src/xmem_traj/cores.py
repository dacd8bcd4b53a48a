"""How many CPU cores this process may use: the default worker count of every stage that forks
processes (the world's scenes, the devkit rasters, the heads)."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


__all__ = ["usable_cores"]
