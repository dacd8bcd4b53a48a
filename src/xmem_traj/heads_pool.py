"""The heads stage on a CPU with several cores: each method's heads train in a forked process
of their own, one thread each. A head's step is hundreds of small operations: a second thread
makes it ~1.2× faster, a second process doubles the work done (docs/experiments.md, "The heads
stage"). Each method trains exactly as in one process — its seeds, checkpoints, logs and epoch
lines — and the processes' lines reach the caller's `report` as they come, interleaved."""

from __future__ import annotations

import multiprocessing
import queue
import signal
from typing import Callable, Sequence

import torch

from .cores import usable_cores
from .interrupts import stage
from .traj.prepare import run_device

#: What the training processes need (data, data module, run layout, resume, report): set
#: before they fork, so they inherit it rather than receive it pickled.
_SHARED: tuple | None = None


def head_workers(cfg, methods: Sequence[str]) -> int:
    """How many processes train the methods' heads (1: in this process, as on a GPU or MPS:
    the device the trainer runs on decides, traj/prepare.run_device)."""
    run = cfg.run
    if run_device(cfg).type != "cpu":
        return 1
    if run.distributed or len(methods) < 2:
        return 1
    return min(len(methods), run.head_workers or usable_cores())


def fit_methods(
    fit_method: Callable,
    data,
    dm,
    layout,
    methods: Sequence[str],
    *,
    resume: bool,
    report: Callable[[str], None],
) -> None:
    """Train every method's seeds with `fit_method(data, dm, layout, method, resume=…,
    report=…)`: in this process, or in head_workers(...) forked processes."""
    workers = head_workers(data.cfg, methods)
    if workers == 1:
        for method in methods:
            with stage(f"training {method}", layout.root):
                fit_method(data, dm, layout, method, resume=resume, report=report)
        return
    global _SHARED
    ctx = multiprocessing.get_context("fork")
    lines = ctx.Queue()  # the processes' report lines, reported here as they come
    _SHARED = (fit_method, data, dm, layout, resume, lines)
    report(f"training {', '.join(methods)} in {workers} processes, one thread each")
    try:
        with stage("training the heads", layout.root):
            pool = ctx.Pool(workers, initializer=_worker_signals, maxtasksperchild=1)
            try:
                done = pool.map_async(_fit_one, methods, chunksize=1)
                while not done.ready():
                    _relay(lines, report, wait=0.2)
                _relay(lines, report, wait=0.0)
                done.get()  # a process's error is raised here
                pool.close()
            except BaseException:  # an error, or Ctrl-C / SIGTERM here: stop the others
                pool.terminate()
                raise
            finally:
                pool.join()
    finally:
        _SHARED = None


def _relay(lines, report: Callable[[str], None], *, wait: float) -> None:
    """Report the lines the processes sent (waiting up to `wait` s for the first)."""
    try:
        report(lines.get(timeout=wait) if wait else lines.get_nowait())
        while True:
            report(lines.get_nowait())
    except queue.Empty:
        return


def _worker_signals() -> None:
    """A training process leaves Ctrl-C to this one (which stops it) and ends quietly on
    SIGTERM: never a traceback of its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _fit_one(method: str) -> str:
    """In a training process: one method, one thread; its lines flushed as they come."""
    fit_method, data, dm, layout, resume, lines = _SHARED
    torch.set_num_threads(1)
    fit_method(data, dm, layout, method, resume=resume, report=lines.put)
    return method


__all__ = ["fit_methods", "head_workers"]
