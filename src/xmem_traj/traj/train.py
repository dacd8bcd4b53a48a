"""`xmem-traj train`: the main job. Extract (or reuse) XMem features, train the predictor and
its history-only ablation, then evaluate against the devkit baselines on the val split."""
from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Callable

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from nuscenes.prediction import PredictHelper

from ..config import TrainConfig
from .data import TrajDataModule, make_datamodule
from .evaluate import evaluate_run, format_table
from .lightning_module import EpochPrinter, TrajectoryModule

log = logging.getLogger(__name__)

RUN_NAME_ENV = "XMEM_TRAJ_RUN_NAME"  # shared with DDP child processes


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("xmem-traj", "torch", "lightning", "torchmetrics", "numpy", "nuscenes-devkit"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    try:
        out["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                           cwd=Path(__file__).parent, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def run_directory(cfg: TrainConfig) -> Path:
    name = cfg.name or os.environ.get(RUN_NAME_ENV) or time.strftime("%Y%m%d-%H%M%S")
    os.environ[RUN_NAME_ENV] = name
    return Path(cfg.run_dir) / name


def checkpoint_dir(run: Path, *, history_only: bool, replica: int = 0) -> Path:
    """run/checkpoints[/history_only][/seed<k>]: replica 0 is the main model of its kind."""
    d = run / "checkpoints" / ("history_only" if history_only else "")
    return d / f"seed{replica}" if replica else d


def fit(cfg: TrainConfig, dm: TrajDataModule, run: Path, *, history_only: bool,
        resume: bool, replica: int = 0, report: Callable[[str], None] = log.info) -> TrajectoryModule:
    """Train one predictor (seed cfg.seed + replica) into checkpoint_dir(...)."""
    seed = cfg.seed + replica
    label = ("history-only" if history_only else "xmem") + (f" seed {seed}" if replica else "")
    ckpt_dir = checkpoint_dir(run, history_only=history_only, replica=replica)
    last = ckpt_dir / "last.ckpt"
    L.seed_everything(seed, workers=True, verbose=False)
    model = TrajectoryModule(dm.feature_dim, head=cfg.head, hidden=cfg.hidden, modes=cfg.modes,
                             lr=cfg.lr, weight_decay=cfg.weight_decay, epochs=cfg.epochs,
                             history_only=history_only, dropout=cfg.dropout, seed=seed,
                             backbone=dm.backbone if dm.online and not history_only else None)
    sub = ("history_only" if history_only else "xmem") + (f"-seed{seed}" if replica else "")
    if resume and last.exists():  # never overwrite the logs of earlier attempts
        n = len(list((run / "logs").glob(f"{sub}-resumed*"))) + 1
        sub = f"{sub}-resumed{n}"
    callbacks = [ModelCheckpoint(dirpath=ckpt_dir, save_last=True, save_top_k=0),
                 EpochPrinter(label, report, every_epoch=replica == 0)]
    if cfg.progress:
        callbacks.append(TQDMProgressBar(leave=False))
    loggers = [CSVLogger(run, name="logs", version=sub)]
    try:
        loggers.append(TensorBoardLogger(run, name="tensorboard", version=sub))
    except ModuleNotFoundError:
        log.warning("tensorboard is not installed; CSV logs only")
    trainer = L.Trainer(max_epochs=cfg.epochs, max_steps=cfg.max_steps, accelerator=cfg.accelerator,
                        devices=cfg.devices, num_nodes=cfg.num_nodes, strategy=cfg.strategy,
                        callbacks=callbacks, logger=loggers, deterministic=True,
                        enable_progress_bar=cfg.progress, enable_model_summary=False,
                        log_every_n_steps=1, num_sanity_val_steps=0)
    dm.seed = seed  # data order per seed
    trainer.fit(model, datamodule=dm, ckpt_path=str(last) if resume and last.exists() else None)
    return model


def run_training(cfg: TrainConfig, *, resume_dir: str | None = None,
                 report: Callable[[str], None] = log.info, evaluate: bool = True) -> Path:
    """The whole main job; returns the run directory. `report` receives the progress lines
    (the CLI passes print). With `evaluate`, rank 0 then scores the run against the devkit
    baselines with the data already loaded, writes eval.json and reports the table."""
    run = Path(resume_dir) if resume_dir else run_directory(cfg)
    if resume_dir:
        os.environ[RUN_NAME_ENV] = run.name
    torch.manual_seed(cfg.seed)
    nusc, dm = make_datamodule(cfg, report)
    train_set, val_set = dm.train_set, dm.val_set
    report(f"targets: {len(train_set)} train, {len(val_set)} val "
           f"({train_set.version}, {train_set.split}/{val_set.split}, "
           f"{'challenge split' if train_set.challenge else 'all agents'})")
    is_zero = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) == 0
    if is_zero:
        run.mkdir(parents=True, exist_ok=True)
        (run / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
        (run / "versions.json").write_text(json.dumps(versions(), indent=1))
    kinds = [cfg.history_only] + ([True] if cfg.ablation and not cfg.history_only else [])
    for history_only in kinds:
        for replica in range(max(1, cfg.seeds)):
            fit(cfg, dm, run, history_only=history_only, resume=resume_dir is not None,
                replica=replica, report=report)
    if evaluate and (not dist.is_initialized() or dist.get_rank() == 0):
        summary = evaluate_run(run, dm, PredictHelper(nusc))
        report("\n" + format_table(summary))
    return run
