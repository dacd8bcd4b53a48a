"""Errors caused by what a user gave us (a path, a value, a file), as opposed to bugs.

The CLI prints a `UserError` as one or two lines (what, where, what to do) and exits with
status 2; anything else is a bug and keeps its traceback. `--debug` (or XMEM_TRAJ_DEBUG=1)
shows the traceback of a UserError too.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input: the message names the file, key or value and says what to do."""


class ConfigError(UserError, ValueError):
    """A config key, value or file that cannot be used."""


class DatasetError(UserError, ValueError):
    """A nuScenes dataroot, table, split or file that cannot be used; the message names it."""


class RunError(UserError):
    """A run directory that lacks what a command needs (config, checkpoints)."""


__all__ = ["ConfigError", "DatasetError", "RunError", "UserError"]
