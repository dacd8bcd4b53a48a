"""One LightningModule per predictor: the head on cached XMem features (or the history-only
ablation), ADE/FDE loss, and challenge metrics in the global frame."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable

import lightning as L
import torch
from torch import nn
from torchmetrics import MeanMetric

from .geometry import local_to_global
from .head import TrajectoryHead
from .metrics import ade_fde_loss, make_metrics


@dataclass
class TrajBatch:
    """A batch of targets; every field is a tensor with the batch first."""

    features: torch.Tensor       # (B, T, C) XMem features (C = 0 for history-only)
    feature_valid: torch.Tensor  # (B, T)
    past: torch.Tensor           # (B, P, 2) agent frame, oldest first
    past_valid: torch.Tensor     # (B, P)
    traj: torch.Tensor           # (B, 12, 2) agent frame
    future_valid: torch.Tensor   # (B, 12)
    translation: torch.Tensor    # (B, 3) agent box at the target sample (global)
    rotation: torch.Tensor       # (B, 4)
    index: torch.Tensor          # (B,) target index in its dataset
    # Only when XMem is fine-tuned (features computed online from the frames):
    frames: torch.Tensor | None = None       # (B, T, 3, H, W) RGB in [0, 1]
    init_masks: torch.Tensor | None = None   # (B, H, W)
    init_frame: torch.Tensor | None = None   # (B,)
    frame_masks: torch.Tensor | None = None  # (B, T, H, W)

    def to(self, device) -> "TrajBatch":
        return TrajBatch(**{f.name: None if getattr(self, f.name) is None
                            else getattr(self, f.name).to(device) for f in fields(self)})


def collate_traj(items: list[dict]) -> TrajBatch:
    return TrajBatch(**{f.name: torch.stack([it[f.name] for it in items])
                        for f in fields(TrajBatch) if f.name in items[0]})


class TrajectoryModule(L.LightningModule):
    def __init__(self, feature_dim: int, *, head: str = "gru", hidden: int = 128, modes: int = 1,
                 lr: float = 2e-3, weight_decay: float = 1e-4, epochs: int = 80,
                 history_only: bool = False, dropout: float = 0.0, seed: int = 0,
                 backbone: nn.Module | None = None):
        super().__init__()
        self.save_hyperparameters(ignore=["backbone"])
        self.backbone = backbone  # an XMemBackbone with trainable parts, or None (cached features)
        self.head = TrajectoryHead(0 if history_only else feature_dim, kind=head, hidden=hidden,
                                   num_modes=modes, dropout=dropout)
        self.train_ade, self.train_fde = MeanMetric(), MeanMetric()
        self.val_metrics = nn.ModuleDict(make_metrics())
        self._rng_restored = False

    def forward(self, batch: TrajBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """→ trajectories (B, K, 12, 2) in the agent frame, mode logits (B, K)."""
        feats, valid = batch.features, batch.feature_valid
        if self.hparams.history_only:
            feats = None
        elif self.backbone is not None:
            feats, valid = self.backbone(
                batch.frames, list(batch.init_masks[:, None]), [[f] for f in batch.init_frame.tolist()],
                list(batch.frame_masks[:, None]))
            feats, valid = feats[:, 0], valid[:, 0]
        return self.head(feats, valid, batch.past, batch.past_valid)

    def predict_global(self, batch: TrajBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """→ trajectories (B, K, 12, 2) in the global frame, probabilities (B, K)."""
        traj, logits = self(batch)
        return local_to_global(traj, batch.translation, batch.rotation), logits.softmax(-1)

    def training_step(self, batch: TrajBatch, batch_idx: int) -> torch.Tensor:
        traj, logits = self(batch)
        ade, fde, loss = ade_fde_loss(traj, logits, batch.traj, batch.future_valid)
        n = batch.traj.shape[0]
        self.train_ade.update(ade, weight=n)
        self.train_fde.update(fde, weight=n)
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        return loss

    def on_train_epoch_end(self) -> None:
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

    def on_train_start(self) -> None:
        # Training randomness (dropout) starts from the seed, whatever ran before it in the
        # process (feature extraction or a cache hit), unless a resumed checkpoint restored it.
        if not self._rng_restored:
            torch.manual_seed(self.hparams.seed)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Dropout draws from the global RNG: keep its state so a resumed run continues exactly.
        checkpoint["torch_rng_state"] = torch.get_rng_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "torch_rng_state" in checkpoint:
            torch.set_rng_state(checkpoint["torch_rng_state"])
            self._rng_restored = True

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr,
                                weight_decay=self.hparams.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, self.hparams.epochs))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


class EpochPrinter(L.Callback):
    """The seed's per-epoch line, for train and val: `Epoch N: ADE x  FDE y`."""

    def __init__(self, label: str = "", report: Callable[[str], None] = print, *,
                 every_epoch: bool = True):
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
            line += (f"  |  ADE {float(m['val/MinADEK_1']):.3f}  FDE {float(m['val/MinFDEK_1']):.3f}"
                     "  (val)")
        bar = trainer.progress_bar_callback  # write above an active bar, not through it
        (bar.print if bar is not None and self.report is print else self.report)(line)
