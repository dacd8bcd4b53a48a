"""The prepare stage: everything a run computes before training, on the run's device, once —
the dataroot (the synthetic default generated on first use), the targets of each split
indexed through the devkit, and every input the run's methods read (XMem features, map
rasters, the world's states), built by their providers and kept in the cache.

`xmem-traj prepare` runs it alone; `train` calls the same code; eval, predict and viz prepare
the val split only. The result is plain data (PreparedData): the DataModule serves batches
from it and the evaluation scores on it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..config import TrainConfig
from ..data.agent_dataset import NuScenesAgentDataset
from ..data.frames import check_image_sizes
from ..data.maps import record_locations
from ..data.sources import DataSource, resolve_source
from ..data.tables import load_nuscenes, version_of
from ..data.world_file import WorldFile, side_file_path
from ..inputs import INPUTS, PrepareContext, SplitTargets
from ..inputs.maps import check_map_expansion
from ..inputs.world import world_subsets
from ..inputs.xmem_input import make_backbone
from ..methods import METHODS, method_inputs

log = logging.getLogger(__name__)

TRACKS = ("past", "past_valid", "traj", "future_valid")


@dataclass
class PreparedSplit:
    """One split's targets with their tracks and the arrays of every input the run needs:
    slot → (N, ...). `items`: per-item loaders of online inputs (XMem fine-tuned);
    `constants`: split-level arrays (InputProvider.constants), their full shape in `shapes`."""

    targets: SplitTargets
    arrays: dict[str, np.ndarray]
    shapes: dict[str, tuple[int, ...]]
    items: list[Callable[[int], dict[str, torch.Tensor]]] = field(default_factory=list)
    constants: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def role(self) -> str:
        return self.targets.role

    @property
    def dataset(self) -> NuScenesAgentDataset:
        return self.targets.dataset

    @property
    def records(self):
        return self.targets.records

    @property
    def split(self) -> str:
        """The split's name (train, val, train_val, mini_val, …)."""
        return self.dataset.split

    def __len__(self) -> int:
        return len(self.targets)


@dataclass
class PreparedData:
    """A run's prepared splits (those not asked for are None: eval, predict and viz prepare
    val only), its resolved config and the context its inputs were built in (tables, side
    file, device, XMem, maps)."""

    cfg: TrainConfig
    context: PrepareContext
    train: PreparedSplit | None
    val: PreparedSplit | None

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(self.cfg.model.method_list)

    @property
    def source(self) -> DataSource:
        return self.context.source

    def split(self, role: str) -> PreparedSplit:
        found = self.train if role == "train" else self.val
        if found is None:
            raise ValueError(f"the {role} split was not prepared")
        return found

    def subsets(self) -> dict[str, tuple[np.ndarray, str]]:
        """Eval subsets of the val targets, name → (mask, title): with / without a past, and
        on the synthetic world by what lies ahead and by its cause (inputs/world.py)."""
        records = self.val.records
        with_past = np.array([len(r.past) > 0 for r in records])
        out = {
            "all": (np.ones(len(records), bool), "all targets"),
            "with_past": (with_past, "targets with a past (>= 1 past annotation)"),
            "no_past": (~with_past, "targets without a past (a scene's first sample)"),
        }
        if self.context.world is not None:
            out.update(world_subsets(self.context.world, records, with_past))
        return out


class StageClock:
    """Wall time of a job's stages, in order."""

    def __init__(self):
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self._t
        self._t = now


def run_device(cfg: TrainConfig) -> torch.device:
    """The device the trainer's module lives on (its first device), where the prepare stage
    runs XMem too."""
    accelerator = cfg.run.accelerator
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            from ..errors import ConfigError

            raise ConfigError(f"accelerator {accelerator}: no CUDA device is visible to torch")
        return torch.device("cuda", 0)
    if accelerator == "mps" or (accelerator == "auto" and torch.backends.mps.is_available()):
        return torch.device("mps")
    return torch.device("cpu")


def has_world_file(cfg: TrainConfig) -> bool:
    """Will the data have the synthetic world's side file? (the default dataset always does;
    a dataroot is looked at, without loading anything)"""
    data = cfg.data
    if not data.dataroot:
        return True
    return side_file_path(data.dataroot, data.version or version_of(data.dataroot)).exists()


def needed_inputs(cfg: TrainConfig, role: str) -> tuple[str, ...]:
    """Input providers the run's methods read on a split (labels on train only)."""
    names: dict[str, None] = {}
    for m in cfg.model.method_list:
        names.update(dict.fromkeys(method_inputs(m, cfg.model)))
        if role == "train":
            names.update(dict.fromkeys(METHODS[m].labels))
    return tuple(names)


def prepare(
    cfg: TrainConfig,
    *,
    roles: tuple[str, ...] = ("train", "val"),
    clock: StageClock | None = None,
    report: Callable[[str], None] = log.info,
) -> PreparedData:
    """Resolve the config, load XMem if a method reads it (first: a bad checkpoint fails
    before any data work), the tables (generating the synthetic default on first use), index
    the splits of `roles` and build every input the methods need, on the run's device."""
    clock = clock or StageClock()
    cfg = cfg.resolved(world_file=has_world_file(cfg))
    device = run_device(cfg)
    wants_xmem = any("xmem" in needed_inputs(cfg, r) for r in roles)
    backbone = make_backbone(cfg) if wants_xmem else None
    source = resolve_source(cfg.data, cfg.world, progress=cfg.run.progress, report=report)
    nusc = load_nuscenes(source.dataroot, source.version)
    ctx = PrepareContext(
        cfg, source, nusc, WorldFile.load(source.dataroot, source.version), device, backbone, report
    )
    if cfg.model.map:
        check_map_expansion(source.dataroot, {rec["location"] for rec in nusc.log})
    _warn_about_labels(cfg, ctx)
    splits = {role: _targets(ctx, role) for role in roles}
    clock.lap("data")
    prepared = {role: _inputs(ctx, splits[role], clock) for role in roles}
    return PreparedData(cfg, ctx, prepared.get("train"), prepared.get("val"))


def _warn_about_labels(cfg: TrainConfig, ctx: PrepareContext) -> None:
    if "xmem" not in cfg.model.method_list or ctx.world is not None:
        return
    if cfg.model.cue_loss > 0:
        log.warning(
            "cue_loss %g is off: %s has no synthetic-world side file (the cue labels)",
            cfg.model.cue_loss,
            ctx.source.dataroot,
        )
    if cfg.model.vision == "cues":
        log.warning(
            "vision cues without cue labels: the cue readout is learned from the "
            "trajectory loss alone"
        )


def _targets(ctx: PrepareContext, role: str) -> SplitTargets:
    """A split's targets through the devkit, with each target's map location."""
    source, nusc = ctx.source, ctx.nusc
    name = source.train_split if role == "train" else source.val_split
    ds = NuScenesAgentDataset.from_config(
        ctx.cfg.data,
        source.dataroot,
        source.version,
        name,
        image_size=ctx.cfg.xmem.image_size,
        nusc=nusc,
    )
    check_image_sizes(ds.records)
    skipped = ds.targets.skipped
    if skipped:
        ctx.report(
            f"{name}: {len(ds)} targets; left out "
            + ", ".join(f"{n} ({why})" for why, n in skipped.most_common())
        )
    return SplitTargets(role, ds, record_locations(nusc, ds.records))


def _inputs(ctx: PrepareContext, targets: SplitTargets, clock: StageClock) -> PreparedSplit:
    """The split's tracks and every needed provider's arrays (one clock lap per provider)."""
    ds = targets.dataset
    tracks = [ds.tracks(i) for i in range(len(ds))]
    arrays = {name: np.stack([t[name] for t in tracks]) for name in TRACKS}
    arrays["translation"] = np.array([r.translation for r in ds.records], np.float32)
    arrays["rotation"] = np.array([r.rotation for r in ds.records], np.float32)
    shapes = {k: tuple(v.shape[1:]) for k, v in arrays.items()}
    items, constants = [], {}
    for name in needed_inputs(ctx.cfg, targets.role):
        provider = INPUTS[name](ctx)
        if provider is None:  # the data cannot give it (e.g. labels without a side file)
            continue
        built = provider.build(targets)
        arrays.update(built)
        shapes.update(provider.shapes(targets, built))
        constants.update(provider.constants(targets))
        shapes.update({k: tuple(v.shape) for k, v in constants.items()})
        loader = provider.items(targets)
        if loader is not None:
            items.append(loader)
        clock.lap("XMem features" if name == "xmem" else name)
    return PreparedSplit(targets, arrays, shapes, items, constants)


__all__ = [
    "PreparedData",
    "PreparedSplit",
    "StageClock",
    "has_world_file",
    "needed_inputs",
    "prepare",
    "run_device",
]
