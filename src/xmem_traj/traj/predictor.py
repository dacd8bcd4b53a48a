"""The trajectory predictor (the seed's "wrapper that uses XMem encoders+memory"): the one
Lightning glue every registered model trains, validates and predicts through — the best-of-K
ADE/FDE loss (or the model's own), the model's extra loss terms, the off-road loss, the
challenge metrics in the global frame, AdamW with cosine decay, and checkpoints from which the
model is rebuilt through the registry."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torchmetrics import MeanMetric

from ..data.agent_frame import local_to_global
from ..methods import METHODS
from .batch import TrajBatch
from .metrics import BEST_ADE, ModeLoss, ade_fde_loss, make_metrics, offroad_loss
from .models import ModelSpec
from .ranking import rank_modes


class EpochTerms:
    """Running means of a step's loss terms, logged once per epoch: a Lightning `log` call costs
    about a millisecond, as much as a small head's whole backward pass."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, name: str, value: torch.Tensor, n: int) -> None:
        value = value.detach().float() * n
        self.sums[name] = self.sums[name] + value if name in self.sums else value
        self.counts[name] = self.counts.get(name, 0) + n

    def pop(self) -> dict[str, torch.Tensor]:
        """The epoch's mean of every term; starts a new epoch."""
        means = {k: v / self.counts[k] for k, v in self.sums.items()}
        self.sums, self.counts = {}, {}
        return means


class SeededTraining:
    """LightningModule hooks: training randomness (dropout) starts from `training_seed`,
    whatever ran before it in the process (feature extraction or a cache hit), unless a resumed
    checkpoint restored it; checkpoints keep the global RNG's state so that a resumed run
    continues exactly."""

    _rng_restored = False

    def on_train_start(self) -> None:
        if not self._rng_restored:
            torch.manual_seed(self.training_seed)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["torch_rng_state"] = torch.get_rng_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "torch_rng_state" in checkpoint:
            torch.set_rng_state(checkpoint["torch_rng_state"])
            self._rng_restored = True


class TrajectoryPredictor(SeededTraining, L.LightningModule):
    """One trained model of a method. `spec` (plain data) and the optimisation settings are
    the checkpoint's hyperparameters; `backbone` (XMem fine-tuned with the model) and
    `constants` (split-level arrays the model keeps as buffers, ModelSpec) are not."""

    def __init__(
        self,
        *,
        spec: dict,
        lr: float,
        weight_decay: float,
        epochs: int,
        seed: int,
        offroad_loss: float = 0.0,
        backbone=None,
        constants=None,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["backbone", "constants"])
        self.method = spec["method"]  # what the data module serves batches for
        model_spec = ModelSpec.from_dict(spec, backbone, constants)
        self.ranking = model_spec.model["ranking"]  # which mode is ranked first (decoding)
        self.mode_loss = ModeLoss.of(model_spec.experimental)  # which mode best-of-K trains
        self.model: nn.Module = METHODS[spec["method"]].factory()(model_spec)
        self.train_ade, self.train_fde = MeanMetric(), MeanMetric()
        self.val_metrics = nn.ModuleDict(make_metrics())
        self.epoch_terms = EpochTerms()
        self.training_seed = seed

    def forward(self, batch: TrajBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """→ trajectories (B, K, F, 2) in the agent frame, mode logits (B, K)."""
        return self.model(batch)

    def predict_global(self, batch: TrajBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """→ trajectories (B, K, F, 2) in the global frame, probabilities (B, K) ordered as
        the run's ranking says (traj/ranking.py)."""
        traj, logits = self(batch)
        probs = rank_modes(traj, logits.softmax(-1), self.ranking)
        return local_to_global(traj, batch.translation, batch.rotation), probs

    def training_step(self, batch: TrajBatch, batch_idx: int) -> torch.Tensor:
        n = len(batch)
        loss, ade, fde, terms = training_loss(
            self.model,
            batch,
            *step_outputs(self.model, batch),
            offroad_weight=self.hparams.offroad_loss,
            modes=self.mode_loss,
        )
        for name, term in terms.items():
            self.epoch_terms.add(name, term, n)
        self.train_ade.update(ade, weight=n)
        self.train_fde.update(fde, weight=n)
        self.epoch_terms.add("loss", loss, n)
        self.log("train/loss", loss, prog_bar=True, logger=False, batch_size=n)  # the bar's
        return loss

    def on_train_epoch_end(self) -> None:
        for name, mean in self.epoch_terms.pop().items():
            self.log(f"train/{name}", mean, sync_dist=True)
        self.log("train/ADE", self.train_ade.compute(), sync_dist=True)
        self.log("train/FDE", self.train_fde.compute(), sync_dist=True)
        self.train_ade.reset()
        self.train_fde.reset()

    def validation_step(self, batch: TrajBatch, batch_idx: int) -> None:
        pred, probs = self.predict_global(batch)
        gt = local_to_global(batch.traj, batch.translation, batch.rotation)
        for metric in self.val_metrics.values():
            metric.update(pred, probs, gt, batch.future_valid)

    def on_validation_epoch_end(self) -> None:
        for name, metric in self.val_metrics.items():
            self.log(f"val/{name}", metric.compute(), sync_dist=True)  # identical on all ranks
            metric.reset()

    def configure_optimizers(self):
        # fused: one kernel for all parameters (the per-tensor loop was a third of a step).
        params = [p for p in self.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(
            params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay, fused=True
        )
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, self.hparams.epochs))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


def step_outputs(model: nn.Module, batch: TrajBatch):
    """A training step's outputs: trajectories, logits and what the model's losses read."""
    if hasattr(model, "forward_train"):
        return model.forward_train(batch)
    traj, logits = model(batch)
    return traj, logits, {}


def training_loss(
    model: nn.Module,
    batch: TrajBatch,
    traj,
    logits,
    extras: dict,
    *,
    offroad_weight: float = 0.0,
    modes: ModeLoss = BEST_ADE,
):
    """→ the loss of a batch, its best mode's ADE and FDE, and the extra terms for the log:
    best-of-K ADE + FDE (or the model's own "loss"), the model's weighted terms, and the
    off-road loss where the batch has the map."""
    ade, fde, loss = ade_fde_loss(traj, logits, batch.traj, batch.future_valid, modes=modes)
    terms = dict(model.losses(batch, traj, logits, extras)) if hasattr(model, "losses") else {}
    loss = terms.pop("loss", loss)
    for term in terms.values():
        loss = loss + term
    raster = batch.get("map")
    if offroad_weight > 0 and raster is not None:
        terms["offroad_loss"] = offroad_loss(traj, raster, batch.future_valid)
        loss = loss + offroad_weight * terms["offroad_loss"]
    return loss, ade, fde, terms


__all__ = ["EpochTerms", "SeededTraining", "TrajectoryPredictor", "step_outputs", "training_loss"]
