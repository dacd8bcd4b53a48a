"""The trajectory predictor (the seed's "wrapper that uses XMem encoders+memory"): one
LightningModule per trained method — the head on per-frame features (cached XMem features, or
XMem itself when parts of it are fine-tuned) plus the past track, its ADE/FDE loss, and the
challenge metrics in the global frame."""
from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric

from ..config import TrainConfig
from ..data.agent_frame import local_to_global
from ..data.maps import MAP_SHAPE
from .metrics import ade_fde_loss, make_metrics, offroad_loss
from ..methods import METHODS
from .backbone import XMemBackbone
from .batch import TrajBatch
from ..synth.cues import ORACLE_FIELDS
from .head import TrajectoryHead

CUE_LABELS = len(ORACLE_FIELDS)  # what the cue oracle is fed, read off XMem instead


class TrajectoryPredictor(L.LightningModule):
    """Every argument is saved as a hyperparameter, so a checkpoint rebuilds its module."""

    def __init__(self, *, method: str, feature_dim: int, head: str, hidden: int, modes: int,
                 past_steps: int, future_steps: int, dropout: float, rollout: bool, lr: float,
                 weight_decay: float, epochs: int, seed: int, cue_loss: float = 0.0,
                 feature_drop: float = 0.0, map_shape: tuple[int, int] | None = None,
                 vision: str = "features", offroad_loss: float = 0.0, backbone: XMemBackbone | None = None):
        super().__init__()
        self.save_hyperparameters(ignore=["backbone"])
        self.backbone = backbone  # an XMemBackbone with trainable parts, or None (cached features)
        self.head = TrajectoryHead(feature_dim if self.uses_features else 0, kind=head,
                                   hidden=hidden, num_modes=modes, past_steps=past_steps,
                                   future_steps=future_steps, dropout=dropout, rollout=rollout,
                                   n_cues=CUE_LABELS if (cue_loss > 0 or vision == "cues") and self.uses_features else 0,
                                   feature_drop=feature_drop, map_shape=map_shape,
                                   vision=vision if method == "xmem" else "features")
        self.train_ade, self.train_fde = MeanMetric(), MeanMetric()
        self.val_metrics = nn.ModuleDict(make_metrics())
        self._rng_restored = False

    @classmethod
    def from_config(cls, cfg: TrainConfig, method: str, *, feature_dim: int, past_steps: int,
                    future_steps: int, seed: int, backbone: XMemBackbone | None = None
                    ) -> "TrajectoryPredictor":
        """cfg as the data module resolved it (dm.cfg: vision "auto" decided by the data)."""
        if cfg.vision == "auto":
            raise ValueError("pass the data module's config (dm.cfg), where vision 'auto' is resolved")
        return cls(method=method, feature_dim=feature_dim, head=cfg.head, hidden=cfg.hidden,
                   modes=cfg.modes, past_steps=past_steps, future_steps=future_steps,
                   dropout=cfg.dropout, rollout=cfg.rollout, cue_loss=cfg.cue_loss if method == "xmem" else 0.0,
                   feature_drop=cfg.feature_drop if method == "xmem" else 0.0,
                   map_shape=MAP_SHAPE if cfg.map else None, lr=cfg.lr,
                   vision=cfg.vision if method == "xmem" else "features", weight_decay=cfg.weight_decay,
                   offroad_loss=cfg.offroad_loss,
                   epochs=cfg.epochs, seed=seed, backbone=backbone)

    @property
    def uses_features(self) -> bool:
        return METHODS[self.hparams.method].inputs != "none"

    def frame_inputs(self, batch: TrajBatch) -> tuple[torch.Tensor | None, torch.Tensor]:
        """→ the head's per-frame inputs (B, T, C) (None for history-only) and their validity
        (B, T): the cached ones, or XMem run on the batch's frames when it is fine-tuned."""
        if not self.uses_features:
            return None, batch.feature_valid
        if self.backbone is None:
            return batch.features, batch.feature_valid
        feats, valid = self.backbone(
            batch.frames, list(batch.init_masks[:, None]), [[f] for f in batch.init_frame.tolist()],
            list(batch.frame_masks[:, None]))
        return feats[:, 0], valid[:, 0]

    def forward(self, batch: TrajBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """→ trajectories (B, K, F, 2) in the agent frame, mode logits (B, K)."""
        return self.head(*self.frame_inputs(batch), batch.past, batch.past_valid, batch.map)

    def predict_global(self, batch: TrajBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """→ trajectories (B, K, F, 2) in the global frame, probabilities (B, K)."""
        traj, logits = self(batch)
        return local_to_global(traj, batch.translation, batch.rotation), logits.softmax(-1)

    def training_step(self, batch: TrajBatch, batch_idx: int) -> torch.Tensor:
        feats, valid = self.frame_inputs(batch)  # once: the cue loss reads them too
        traj, logits = self.head(feats, valid, batch.past, batch.past_valid, batch.map)
        ade, fde, loss = ade_fde_loss(traj, logits, batch.traj, batch.future_valid)
        n = batch.traj.shape[0]
        if self.hparams.cue_loss > 0 and batch.cues is not None and feats is not None:
            # The frame branch learns to read the seen cues (and visible faces) off XMem.
            frames = valid & batch.cue_valid
            if frames.any():
                read = self.head.cue_logits(feats)[frames]
                aux = F.binary_cross_entropy_with_logits(read, batch.cues[frames][:, :CUE_LABELS])
                self.log("train/cue_loss", aux, batch_size=n)
                loss = loss + self.hparams.cue_loss * aux
        if self.hparams.offroad_loss > 0 and batch.map is not None:
            off = offroad_loss(traj, batch.map, batch.future_valid)
            self.log("train/offroad_loss", off, batch_size=n)
            loss = loss + self.hparams.offroad_loss * off
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
        # fused: one kernel for all parameters (the per-tensor loop was a third of a step).
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr,
                                weight_decay=self.hparams.weight_decay, fused=True)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, self.hparams.epochs))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


__all__ = ["TrajectoryPredictor"]
