"""`xmem-traj train`: the main job. Prepare the data and inputs (traj/prepare.py), train each
method of the config (one predictor per seed), then evaluate against the devkit baselines on
the val split."""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Callable

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from .atomic import file_lock, write_file_atomically
from .config import TrainConfig
from .errors import RunError
from .eval.report import format_report
from .eval.scoring import evaluate_run
from .heads_pool import fit_methods
from .interrupts import stage
from .methods import method_epochs
from .runs import RunLayout, load_run, new_run, process_rank
from .traj.checkpoint_io import AtomicCheckpointIO
from .traj.datamodules import TrajDataModule, model_spec
from .traj.ensemble import EnsemblePredictor, SeedCheckpoints, SeedLogger
from .traj.predictor import TrajectoryPredictor
from .traj.prepare import PreparedData, StageClock, prepare
from .traj.stacking import NotStackable

log = logging.getLogger(__name__)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("xmem-traj", "torch", "lightning", "torchmetrics", "numpy", "nuscenes-devkit"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    try:
        out["git_commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return out


class EpochPrinter(L.Callback):
    """The seed's per-epoch line, for train and val: `Epoch N: ADE x  FDE y`."""

    def __init__(
        self, label: str = "", report: Callable[[str], None] = print, *, every_epoch: bool = True
    ):
        self.label = f"[{label}] " if label else ""
        self.report = report
        self.every_epoch = every_epoch  # False: only the last epoch's line

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Runs before the module's own hook (which logs and resets); compute() syncs across
        # ranks, so every rank calls it and only rank 0 prints.
        ade, fde = float(pl_module.train_ade.compute()), float(pl_module.train_fde.compute())
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        if not self.every_epoch and trainer.current_epoch != trainer.max_epochs - 1:
            return
        m = trainer.callback_metrics
        line = f"{self.label}Epoch {trainer.current_epoch}: ADE {ade:.3f}  FDE {fde:.3f}  (train)"
        if "val/MinADEK_1" in m:
            line += (
                f"  |  ADE {float(m['val/MinADEK_1']):.3f}  FDE {float(m['val/MinFDEK_1']):.3f}"
                "  (val)"
            )
        bar = trainer.progress_bar_callback  # write above an active bar, not through it
        (bar.print if bar is not None and self.report is print else self.report)(line)


def member(data: PreparedData, method: str, seed_index: int) -> TrajectoryPredictor:
    """A fresh model of `method` for seed optim.seed + seed_index (weights drawn from it)."""
    cfg = data.cfg
    seed = cfg.optim.seed + seed_index
    L.seed_everything(seed, workers=True, verbose=False)
    spec = model_spec(data, method)
    return TrajectoryPredictor(
        spec=spec.to_dict(),
        lr=cfg.optim.lr,
        weight_decay=cfg.optim.weight_decay,
        epochs=method_epochs(method, cfg.optim),
        seed=seed,
        offroad_loss=cfg.experimental.offroad_loss,
        backbone=spec.backbone,
        constants=spec.constants,
    )


def fit_method(
    data: PreparedData,
    dm: TrajDataModule,
    layout: RunLayout,
    method: str,
    *,
    resume: bool,
    report: Callable[[str], None] = log.info,
) -> None:
    """Train every seed of `method`: as one stacked ensemble where it can (optim.stack_seeds,
    more than one seed, one device, a stackable model), else one after the other."""
    cfg = data.cfg
    seeds = cfg.optim.seeds
    if seeds > 1 and cfg.optim.stack_seeds and not cfg.run.distributed:
        try:
            ensemble = EnsemblePredictor(
                [member(data, method, i) for i in range(seeds)],
                report=report,
                label=method.replace("_", "-"),
            )
        except NotStackable as why:
            log.info("%s trains seed by seed: %s", method, why)
        else:
            return fit_ensemble(ensemble, cfg, dm, layout, resume=resume)
    for i in range(seeds):
        fit(data, dm, layout, method, i, resume=resume, report=report)


def fit(
    data: PreparedData,
    dm: TrajDataModule,
    layout: RunLayout,
    method: str,
    seed_index: int,
    *,
    resume: bool,
    report: Callable[[str], None] = log.info,
) -> TrajectoryPredictor:
    """Train one model of `method` with seed optim.seed + seed_index into the run."""
    label = method.replace("_", "-") + (
        f" seed {data.cfg.optim.seed + seed_index}" if seed_index else ""
    )
    last = layout.checkpoint(method, seed_index)
    model = member(data, method, seed_index)
    trainer = make_trainer(data.cfg, layout, method, seed_index, label, report)
    trainer.fit(model, datamodule=dm, ckpt_path=str(last) if resume and last.exists() else None)
    return model


def fit_ensemble(
    ensemble: EnsemblePredictor,
    cfg: TrainConfig,
    dm: TrajDataModule,
    layout: RunLayout,
    *,
    resume: bool,
) -> EnsemblePredictor:
    """Train a stacked ensemble: its own checkpoint for resuming, each seed's last.ckpt and
    logs as if trained alone."""
    method, k = ensemble.method, ensemble.k
    folder = layout.root / "checkpoints" / method / "ensemble"
    callbacks = [
        last_checkpoint(folder),
        SeedCheckpoints([layout.checkpoint(method, i) for i in range(k)]),
    ]
    loggers = []
    for i in range(k):
        sub = layout.log_name(method, i)
        loggers.append(SeedLogger(CSVLogger(layout.root, name="logs", version=sub), i))
        try:
            board = TensorBoardLogger(layout.root, name="tensorboard", version=sub)
            loggers.append(SeedLogger(board, i))
        except ModuleNotFoundError:
            log.warning("tensorboard is not installed; CSV logs only")
    trainer = _trainer(cfg, callbacks, loggers, epochs=ensemble.epochs)
    last = folder / "last.ckpt"
    trainer.fit(ensemble, datamodule=dm, ckpt_path=str(last) if resume and last.exists() else None)
    return ensemble


def last_checkpoint(folder: Path) -> ModelCheckpoint:
    """`folder/last.ckpt` after every epoch (a kill -9 loses at most one epoch)."""
    return ModelCheckpoint(
        dirpath=folder,
        filename="last",
        monitor=None,
        save_top_k=1,
        every_n_epochs=1,
        save_on_train_epoch_end=True,
        enable_version_counter=False,
    )


def make_trainer(
    cfg: TrainConfig,
    layout: RunLayout,
    method: str,
    seed_index: int,
    label: str,
    report: Callable[[str], None],
) -> L.Trainer:
    """The Lightning trainer of one model: a last.ckpt after every epoch (a kill -9 loses at
    most one epoch), the seed's epoch lines, CSV and TensorBoard logs in a fresh folder."""
    sub = layout.log_name(method, seed_index)
    callbacks = [
        last_checkpoint(layout.checkpoint_dir(method, seed_index)),
        EpochPrinter(label, report, every_epoch=seed_index == 0),
    ]
    loggers = [CSVLogger(layout.root, name="logs", version=sub)]
    try:
        loggers.append(TensorBoardLogger(layout.root, name="tensorboard", version=sub))
    except ModuleNotFoundError:
        log.warning("tensorboard is not installed; CSV logs only")
    return _trainer(cfg, callbacks, loggers, epochs=method_epochs(method, cfg.optim))


def _trainer(cfg: TrainConfig, callbacks: list, loggers: list, *, epochs: int) -> L.Trainer:
    """The project's Lightning trainer: `epochs` of the run's schedule, its device and
    precision, atomic checkpoints."""
    optim, run = cfg.optim, cfg.run
    if run.progress:
        callbacks = [*callbacks, TQDMProgressBar(leave=False)]
    return L.Trainer(
        max_epochs=epochs,
        max_steps=optim.max_steps,
        accelerator=run.accelerator,
        devices=run.devices,
        num_nodes=run.num_nodes,
        strategy=run.strategy,
        callbacks=callbacks,
        logger=loggers,
        deterministic=True,
        enable_progress_bar=run.progress,
        enable_model_summary=False,
        precision="bf16-mixed" if cfg.xmem.precision == "bf16" else "32-true",
        log_every_n_steps=10,
        num_sanity_val_steps=0,
        plugins=[AtomicCheckpointIO()],
    )


def check_resumable(layout: RunLayout, cfg: TrainConfig) -> None:
    """Every checkpoint a resume would continue from must load; checked before any work."""
    for method in cfg.model.method_list:
        for path in layout.checkpoints(method):
            try:
                torch.load(path, map_location="cpu", weights_only=True)
            except Exception as err:  # noqa: BLE001  (truncated files fail in many ways)
                raise RunError(
                    f"cannot resume from {path}: it does not load "
                    f"({type(err).__name__}: "
                    f"{str(err).splitlines()[0] if str(err) else ''}); delete it to "
                    "retrain that model from scratch"
                ) from None


def run_training(
    cfg: TrainConfig,
    *,
    resume_dir: str | None = None,
    report: Callable[[str], None] = log.info,
    evaluate: bool = True,
) -> Path:
    """The whole main job; returns the run directory. `report` receives the progress lines
    (the CLI passes print). Prepare (data, inputs), train every method's seeds, then with
    `evaluate` rank 0 scores the run against the devkit baselines on the prepared val split,
    writes eval.json and reports the table."""
    layout = RunLayout(Path(resume_dir)) if resume_dir else new_run(cfg)
    if resume_dir:
        check_resumable(layout, cfg)
        layout.drop_empty_logs()  # what earlier failed attempts left
    # Rank 0 holds the run's lock while it works: others see a run in progress, not a stub.
    with file_lock(layout.lock) if process_rank() == 0 else contextlib.nullcontext():
        _run(cfg, layout, resume=resume_dir is not None, report=report, evaluate=evaluate)
    return layout.root


def _run(cfg: TrainConfig, layout: RunLayout, *, resume: bool, report, evaluate: bool) -> None:
    torch.manual_seed(cfg.optim.seed)
    clock = StageClock()
    try:
        with stage("preparing the data", layout.root):
            data = prepare(cfg, clock=clock, report=report)
    except BaseException:
        if not resume and process_rank() == 0:
            layout.remove_if_empty()  # a bad input leaves no empty run behind
        raise
    cfg = data.cfg  # resolved: "auto" values decided
    train_set, val_set = data.train.dataset, data.val.dataset
    report(
        f"targets: {len(train_set)} train, {len(val_set)} val "
        f"({train_set.targets.version}, {train_set.split}/{val_set.split}, "
        f"{'challenge split' if train_set.targets.challenge else 'all agents'})"
    )
    if process_rank() == 0 and not resume:  # a resumed run keeps the config it ran with
        layout.config.write_text(json.dumps(cfg.to_dict(), indent=1))
        layout.versions.write_text(json.dumps(versions(), indent=1))
    elif process_rank() == 0 and load_run(layout.root)[1].model.methods != cfg.model.methods:
        # … unless the resume adds methods (runs.adds_methods): its config names them now
        write_file_atomically(
            layout.config, lambda tmp: tmp.write_text(json.dumps(cfg.to_dict(), indent=1))
        )
    dm = TrajDataModule(data, cfg.optim, cfg.run)
    fit_methods(fit_method, data, dm, layout, data.methods, resume=resume, report=report)
    clock.lap("heads")
    if evaluate and (not dist.is_initialized() or dist.get_rank() == 0):
        with stage("evaluating", layout.root):
            summary = evaluate_run(layout, data)
        clock.lap("eval")
        summary["stage_seconds"] = clock.laps
        write_file_atomically(
            layout.eval, lambda tmp: tmp.write_text(json.dumps(summary, indent=1))
        )
        report("\n" + format_report(summary))
        report("\nstage times: " + ", ".join(f"{k} {v:.0f} s" for k, v in clock.laps.items()))


__all__ = ["EpochPrinter", "fit", "run_training", "versions"]
