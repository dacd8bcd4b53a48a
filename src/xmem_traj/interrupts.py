"""Honest signals: SIGTERM (a scheduler, `timeout`, systemd) and SIGINT (Ctrl-C) end a
command with a non-zero status (128 + the signal's number) and one line saying where it
stopped and how to continue, instead of a traceback or, under Lightning, a silent success."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path
from typing import Iterator


class Interrupted(BaseException):
    """Raised in the main thread by a SIGTERM or SIGINT (a BaseException: nothing catches it
    by accident); `stage` and `run` say where it happened."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.stage: str | None = None
        self.run: Path | None = None

    @property
    def exit_status(self) -> int:
        return 128 + self.signum

    def message(self) -> str:
        where = f" during {self.stage}" if self.stage else ""
        line = f"interrupted by {signal.Signals(self.signum).name}{where}"
        if self.run is not None:
            line += (
                f"; the run is in {self.run}, continue it with: xmem-traj train --resume {self.run}"
            )
        return line


def _raise(signum, frame) -> None:
    raise Interrupted(signum)


def install() -> dict:
    """SIGTERM and SIGINT raise Interrupted from now on (Lightning calls this handler too,
    after its own) → the handlers they had, for `restore`."""
    return {signum: signal.signal(signum, _raise) for signum in (signal.SIGTERM, signal.SIGINT)}


def restore(previous: dict) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


@contextlib.contextmanager
def stage(name: str, run: Path | None = None) -> Iterator[None]:
    """Label an Interrupted raised inside with the stage (the innermost wins) and the run."""
    try:
        yield
    except Interrupted as stop:
        stop.stage = stop.stage or name
        stop.run = stop.run or run
        raise


__all__ = ["Interrupted", "install", "restore", "stage"]
