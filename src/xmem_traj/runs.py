"""A run directory's layout and the methods a run trains: the one place that knows where a
run keeps its config, checkpoints, logs and tables.

    runs/<name>/
      config.json  versions.json          the resolved TrainConfig (nested) and package versions
      checkpoints/<method>/seed<k>/       last.ckpt (saved every epoch) per method and seed
      logs/<method>-seed<k>[-resumed<n>]/ CSV logs; tensorboard/ the same for TensorBoard
      eval.json                           the table of the training's evaluation
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .atomic import is_locked
from .config import TrainConfig
from .errors import ConfigError, RunError
from .methods import METHODS
from .options import build_config

RUN_NAME_ENV = "XMEM_TRAJ_RUN_NAME"  # shared with DDP child processes


@dataclass(frozen=True)
class RunLayout:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def versions(self) -> Path:
        return self.root / "versions.json"

    @property
    def eval(self) -> Path:
        return self.root / "eval.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def checkpoint_dir(self, method: str, seed_index: int) -> Path:
        return self.root / "checkpoints" / method / f"seed{seed_index}"

    def checkpoint(self, method: str, seed_index: int) -> Path:
        return self.checkpoint_dir(method, seed_index) / "last.ckpt"

    def checkpoints(self, method: str) -> list[Path]:
        """The method's last.ckpt files in seed order."""
        found = (self.root / "checkpoints" / method).glob("seed*/last.ckpt")
        return sorted(found, key=lambda p: int(p.parent.name[4:]))

    def log_name(self, method: str, seed_index: int) -> str:
        """A fresh log folder name: earlier attempts' logs are never overwritten."""
        base = f"{method}-seed{seed_index}"
        if not (self.logs / base).exists():
            return base
        n = len(list(self.logs.glob(f"{base}-resumed*"))) + 1
        return f"{base}-resumed{n}"

    @property
    def lock(self) -> Path:
        """Held by the process training the run."""
        return self.root / ".lock"

    def is_stub(self) -> bool:
        """What a run that failed before its first checkpoint leaves: no checkpoint, no
        eval.json, and no process training it (a name it may reuse)."""
        return (
            not any(self.root.glob("checkpoints/*/*/*.ckpt"))
            and not self.eval.exists()
            and not is_locked(self.lock)
        )

    def remove_if_empty(self) -> None:
        """Remove the run folder when it holds nothing but its lock (a run that failed on its
        input)."""
        if self.root.is_dir() and {p.name for p in self.root.iterdir()} <= {self.lock.name}:
            self.lock.unlink(missing_ok=True)
            self.root.rmdir()

    def drop_empty_logs(self) -> None:
        """Remove resumed attempts' log folders that never logged a metric (an attempt that
        failed before training), in logs/ and tensorboard/."""
        for folder in [
            *self.logs.glob("*-resumed*"),
            *(self.root / "tensorboard").glob("*-resumed*"),
        ]:
            if folder.is_dir() and not any(
                f.name.startswith(("metrics", "events")) for f in folder.iterdir()
            ):
                shutil.rmtree(folder)


def process_rank() -> int:
    """This process's DDP rank from the launcher's environment (0 when not distributed)."""
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")))


def new_run(cfg: TrainConfig) -> RunLayout:
    """A new run directory, created exclusively by rank 0: cfg.name, or a timestamp with a
    random suffix (torchrun: its run id). Other DDP ranks join it by name: Lightning's launcher
    starts them with RUN_NAME_ENV, which rank 0 sets for multi-device runs."""
    run = cfg.run
    parent = Path(run.run_dir)
    torchrun = os.environ.get("TORCHELASTIC_RUN_ID")
    if process_rank() != 0:
        name = run.name or os.environ.get(RUN_NAME_ENV) or (torchrun and f"torchrun-{torchrun}")
        if not name:
            raise RunError("a DDP rank > 0 cannot tell which run to join; pass --name")
        return RunLayout(parent / name)
    name = run.name or (
        f"torchrun-{torchrun}"
        if torchrun
        else f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    )
    root = parent / name
    parent.mkdir(parents=True, exist_ok=True)
    try:
        root.mkdir()
    except FileExistsError:
        if not (root.is_dir() and RunLayout(root).is_stub()):
            raise RunError(
                f"run directory {root} already exists; pass another --name, or "
                f"--resume {root} to continue it"
            ) from None
        shutil.rmtree(root)  # a failed attempt's stub: its name is free again
        root.mkdir()
    if run.distributed:
        os.environ[RUN_NAME_ENV] = name
    return RunLayout(root)


#: Options a resumed run may change: where its data and caches are now, what it runs on, and
#: how its modes are decoded (config_groups.DECODING_OPTIONS).
#: Anything else would not continue the same run (shapes, data, schedule, seeds).
RESUMABLE = (
    "dataroot",
    "cache_dir",
    "accelerator",
    "devices",
    "num_nodes",
    "strategy",
    "num_workers",
    "prepare_workers",
    "progress",
    "max_steps",
    "replicates",
    "ranking",
    "road_snap",
)


def adds_methods(option: str, saved: TrainConfig, cfg: TrainConfig) -> bool:
    """Whether a resume's change of `option` only adds methods to the run: --methods naming
    every method it had and more, or an option that only methods it did not have read
    (Method.options, e.g. --peer-epochs or --raster-resolution for MTP and CoverNet added to a
    run without them)."""
    had, wanted = saved.model.method_list, cfg.model.method_list
    if option == "methods":
        return bool(had) and set(had) <= set(wanted) and len(wanted) > len(had)
    readers = {m for m in wanted if option in METHODS[m].options}
    return bool(readers) and not any(option in METHODS[m].options for m in had)


def load_run(
    run_dir: str | os.PathLike, overrides: dict | None = None, *, resume: bool = False
) -> tuple[RunLayout, TrainConfig]:
    """A run's layout and its config (with `overrides`, e.g. CLI options, on top). With
    `resume`, an override that would not continue the same run is a ConfigError naming it;
    more methods may be added (they train, the others continue, eval scores them all)."""
    layout = RunLayout(Path(run_dir))
    if not layout.config.is_file():
        raise RunError(f"{layout.root} is not a run directory (no config.json)")
    try:
        base = json.loads(layout.config.read_text())
    except json.JSONDecodeError as err:
        raise RunError(f"{layout.config} cannot be parsed: {err}") from None
    saved = build_config({}, base=base, source=str(layout.config))
    cfg = build_config(overrides or {}, base=base, source=str(layout.config))
    if resume:
        before, after = saved.flat(), cfg.flat()
        changed = [
            k
            for k in after
            if after[k] != before[k] and k not in RESUMABLE and not adds_methods(k, saved, cfg)
        ]
        if changed:
            k = changed[0]
            if k == "methods":
                raise ConfigError(
                    f"--methods cannot change on resume except to add methods: {layout.root} "
                    f"trains {before[k]!r}; name all of them and the new ones"
                )
            raise ConfigError(
                f"--{k.replace('_', '-')} cannot change on resume: {layout.root} "
                f"was trained with {k} = {before[k]!r} ({layout.config}); start "
                "a new run for another value"
            )
    return layout, cfg


def require_checkpoint(layout: RunLayout, method: str, seed_index: int = 0) -> Path:
    """The checkpoint of a method's `seed_index`-th head (0: the first seed's), or a RunError
    that says what is there."""
    found = layout.checkpoints(method)
    if not found:
        raise RunError(
            f"{layout.root} has no trained {method!r} model "
            f"(no {layout.checkpoint(method, 0).relative_to(layout.root)}); "
            "train it or pass --resume to finish the run"
        )
    if not 0 <= seed_index < len(found):
        raise RunError(
            f"--seed-index {seed_index}: {layout.root} holds {len(found)} trained "
            f"{method!r} heads (0..{len(found) - 1})"
        )
    return found[seed_index]


__all__ = [
    "RESUMABLE",
    "RUN_NAME_ENV",
    "RunLayout",
    "load_run",
    "new_run",
    "process_rank",
    "require_checkpoint",
]
