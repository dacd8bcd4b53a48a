"""K training seeds of a method as one stacked model (traj/stacking.py), trained in one batched
step: each seed keeps its own initial weights, data order (its own shuffle, the K batches of a
step concatenated seed-major), dropout draws, loss and optimiser state (AdamW is elementwise,
so one optimiser over the stacked weights is K optimisers). Each seed's checkpoint, logs and
epoch lines are written as if it had been trained alone; the stacked model's own checkpoint
(checkpoints/<method>/ensemble/last.ckpt) is what a resume continues from."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import lightning as L
import torch
from lightning.pytorch.loggers import Logger
from torch import nn
from torchmetrics import MeanMetric

from ..data.agent_frame import local_to_global
from .batch import TrajBatch
from .checkpoint_io import AtomicCheckpointIO
from .metrics import make_metrics
from .predictor import EpochTerms, SeededTraining, TrajectoryPredictor, step_outputs, training_loss
from .ranking import rank_modes
from .stacking import stack_models, unstacked_state


class EnsemblePredictor(SeededTraining, L.LightningModule):
    """The stacked model of K members (TrajectoryPredictors of one method, each built with its
    own seed) and the glue that trains, validates and exports them seed by seed."""

    def __init__(
        self,
        members: Sequence[TrajectoryPredictor],
        *,
        report: Callable[[str], None] = print,
        label: str = "",
    ):
        super().__init__()
        self.k = len(members)
        self.member_hparams = [dict(m.hparams) for m in members]
        self.method, self.seeds = members[0].method, [m.hparams.seed for m in members]
        self.training_seed = self.seeds[0]
        first = members[0].hparams
        self.lr, self.weight_decay, self.epochs = first.lr, first.weight_decay, first.epochs
        self.offroad_weight = first.offroad_loss
        self.ranking = members[0].ranking
        self.mode_loss = members[0].mode_loss
        self.model = stack_models([m.model for m in members])
        self.train_ade = nn.ModuleList(MeanMetric() for _ in members)
        self.train_fde = nn.ModuleList(MeanMetric() for _ in members)
        self.val_metrics = nn.ModuleList(nn.ModuleDict(make_metrics()) for _ in members)
        self.epoch_terms = EpochTerms()
        self.report, self.label = report, label

    def seed_rows(self, n: int) -> list[slice]:
        """The rows of each seed in a batch of n = K·B rows."""
        b = n // self.k
        return [slice(i * b, (i + 1) * b) for i in range(self.k)]

    def training_step(self, batch: TrajBatch, batch_idx: int) -> torch.Tensor:
        traj, logits, extras = step_outputs(self.model, batch)
        total = 0.0
        for i, rows in enumerate(self.seed_rows(len(batch))):
            part = batch.rows(rows)
            loss, ade, fde, terms = training_loss(
                self.model,
                part,
                traj[rows],
                logits[rows],
                {k: v[rows] for k, v in extras.items()},
                offroad_weight=self.offroad_weight,
                modes=self.mode_loss,
            )
            n = len(part)
            for name, term in terms.items():
                self.epoch_terms.add(f"{name}/seed{i}", term, n)
            self.epoch_terms.add(f"loss/seed{i}", loss, n)
            self.train_ade[i].update(ade, weight=n)
            self.train_fde[i].update(fde, weight=n)
            total = total + loss
        self.log("train/loss", total / self.k, prog_bar=True, logger=False, batch_size=len(batch))
        return total

    def validation_step(self, batch: TrajBatch, batch_idx: int) -> None:
        copies = TrajBatch.cat([batch] * self.k)  # every seed predicts the same targets
        traj, logits = self.model(copies)
        gt = local_to_global(batch.traj, batch.translation, batch.rotation)
        for i, rows in enumerate(self.seed_rows(len(copies))):
            pred = local_to_global(traj[rows], batch.translation, batch.rotation)
            probs = rank_modes(traj[rows], logits[rows].softmax(-1), self.ranking)
            for metric in self.val_metrics[i].values():
                metric.update(pred, probs, gt, batch.future_valid)

    def on_validation_epoch_end(self) -> None:
        for i, metrics in enumerate(self.val_metrics):
            for name, metric in metrics.items():
                self.log(f"val/{name}/seed{i}", metric.compute(), sync_dist=True)
                metric.reset()

    def on_train_epoch_end(self) -> None:
        trainer, last = self.trainer, self.current_epoch == self.trainer.max_epochs - 1
        for name, mean in self.epoch_terms.pop().items():
            self.log(f"train/{name}", mean, sync_dist=True)
        for i in range(self.k):
            ade, fde = self.train_ade[i].compute(), self.train_fde[i].compute()
            self.log(f"train/ADE/seed{i}", ade, sync_dist=True)
            self.log(f"train/FDE/seed{i}", fde, sync_dist=True)
            self.train_ade[i].reset()
            self.train_fde[i].reset()
            if trainer.is_global_zero and (i == 0 or last):
                self.report(self._epoch_line(i, float(ade), float(fde)))

    def _epoch_line(self, i: int, ade: float, fde: float) -> str:
        """The seed's line, as a seed trained alone prints it."""
        name = self.label + (f" seed {self.seeds[i]}" if i else "")
        line = f"[{name}] Epoch {self.current_epoch}: ADE {ade:.3f}  FDE {fde:.3f}  (train)"
        m = self.trainer.callback_metrics
        if f"val/MinADEK_1/seed{i}" in m:
            line += (
                f"  |  ADE {float(m[f'val/MinADEK_1/seed{i}']):.3f}  "
                f"FDE {float(m[f'val/MinFDEK_1/seed{i}']):.3f}  (val)"
            )
        return line

    def configure_optimizers(self):
        opt = torch.optim.AdamW(
            self.parameters(), lr=self.lr, weight_decay=self.weight_decay, fused=True
        )
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, self.epochs))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    def member_checkpoint(self, i: int) -> dict:
        """Seed i's checkpoint as TrajectoryPredictor writes it (load_predictor reads it)."""
        state = {f"model.{k}": v for k, v in unstacked_state(self.model, i).items()}
        return {
            "state_dict": state,
            "hyper_parameters": dict(self.member_hparams[i]),
            "epoch": self.current_epoch,
            "global_step": self.global_step,
        }


class SeedCheckpoints(L.Callback):
    """After every epoch, each seed's last.ckpt (written atomically), beside the stacked
    model's own checkpoint."""

    def __init__(self, paths: Sequence[Path]):
        self.paths, self.io = list(paths), AtomicCheckpointIO()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: EnsemblePredictor) -> None:
        if trainer.is_global_zero:
            for i, path in enumerate(self.paths):
                self.io.save_checkpoint(pl_module.member_checkpoint(i), path)


class SeedLogger(Logger):
    """One seed's logger: forwards the metrics logged as `<name>/seed<i>` under `<name>`, so
    that each seed's logs read as if it had been trained alone."""

    def __init__(self, inner: Logger, seed_index: int):
        super().__init__()
        self.inner, self.suffix = inner, f"/seed{seed_index}"

    @property
    def name(self):
        return self.inner.name

    @property
    def version(self):
        return self.inner.version

    @property
    def log_dir(self):
        return getattr(self.inner, "log_dir", None)

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        self.inner.log_hyperparams(params, *args, **kwargs)

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        mine = {k[: -len(self.suffix)]: v for k, v in metrics.items() if k.endswith(self.suffix)}
        if "epoch" in metrics:
            mine["epoch"] = metrics["epoch"]
        if mine:
            self.inner.log_metrics(mine, step)

    def save(self) -> None:
        self.inner.save()

    def finalize(self, status: str) -> None:
        self.inner.finalize(status)


__all__ = ["EnsemblePredictor", "SeedCheckpoints", "SeedLogger"]
