"""The methods built on the GRU/MLP head (traj/head.py): the past track, the context inputs
(the map raster, the neighbours' tracks) and one per-frame input — XMem's features (the XMem
model), the world's true states (the diagnostic oracles) or nothing (history-only). The XMem
model also carries the auxiliary cue loss, and XMem itself when parts of it are fine-tuned
(features then computed in the step)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...data.world_schema import CUE_LABEL_FIELDS
from ..batch import TrajBatch
from ..head import TrajectoryHead
from . import ModelSpec


def _head(
    spec: ModelSpec,
    feature_dim: int,
    *,
    n_cues: int = 0,
    feature_drop: float = 0.0,
    vision: str = "features",
) -> TrajectoryHead:
    m, x = spec.model, spec.experimental
    map_shape = spec.shapes.get("map")
    neighbours = spec.shapes.get("neighbours")
    return TrajectoryHead(
        feature_dim,
        kind=x["head"],
        hidden=m["hidden"],
        num_modes=m["modes"],
        past_steps=spec.past_steps,
        future_steps=spec.future_steps,
        dropout=m["dropout"],
        rollout=x["rollout"],
        cv_mode=x["cv_mode"],
        n_cues=n_cues,
        feature_drop=feature_drop,
        map_shape=tuple(map_shape) if map_shape else None,
        vision=vision,
        neighbour_steps=int(neighbours[1]) if neighbours else 0,
    )


def context(batch: TrajBatch) -> tuple[torch.Tensor | None, ...]:
    """The context inputs a head reads after the past track: the map and the neighbours
    (None where the batch does not carry them)."""
    return batch.get("map"), batch.get("neighbours"), batch.get("neighbours_valid")


class FrameHeadModel(nn.Module):
    """The head on the past track, the map (slot "map", if the method reads it) and one
    per-frame input slot (None: history only)."""

    def __init__(self, head: TrajectoryHead, slot: str | None):
        super().__init__()
        self.head, self.slot = head, slot

    def frame_inputs(self, batch: TrajBatch) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The per-frame input (B, T, C) and its validity (B, T); None without one."""
        if self.slot is None:
            return None, None
        return batch.extras[self.slot], batch.extras[f"{self.slot}_valid"]

    def forward(self, batch: TrajBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """→ trajectories (B, K, F, 2) in the agent frame, mode logits (B, K)."""
        feats, valid = self.frame_inputs(batch)
        return self.head(feats, valid, batch.past, batch.past_valid, *context(batch))


class XMemModel(FrameHeadModel):
    """The XMem model: the head on XMem's per-frame features (cached, or computed by
    `backbone` in the step when parts of XMem are fine-tuned), with the auxiliary loss that
    asks its frame branch to read the cues seen in each frame (slot "cue_labels")."""

    def __init__(self, head: TrajectoryHead, *, cue_loss: float, backbone=None):
        super().__init__(head, "xmem")
        self.cue_loss = cue_loss
        self.backbone = backbone  # an XMemBackbone with trainable parts, or None

    def frame_inputs(self, batch: TrajBatch) -> tuple[torch.Tensor, torch.Tensor]:
        if self.backbone is None:
            return super().frame_inputs(batch)
        x = batch.extras
        feats, valid = self.backbone(
            x["frames"],
            list(x["init_masks"][:, None]),
            [[f] for f in x["init_frame"].tolist()],
            list(x["frame_masks"][:, None]),
        )
        return feats[:, 0], valid[:, 0]

    def forward_train(self, batch: TrajBatch):
        """→ trajectories, logits and, where the batch has cue labels, the frame branch's
        reading of the cues (B, T, n_cues) with the frames' validity: computed once, from the
        features the head read (with XMem fine-tuned: the ones XMem computed in this step)."""
        feats, valid = self.frame_inputs(batch)
        traj, logits, cue_logits = self.head(
            feats, valid, batch.past, batch.past_valid, *context(batch), with_cue_logits=True
        )
        labelled = batch.get("cue_labels_valid")
        if self.cue_loss > 0 and labelled is not None and (valid & labelled).any():
            return traj, logits, {"cue_logits": cue_logits, "frame_valid": valid}
        return traj, logits, {}

    def losses(self, batch: TrajBatch, traj, logits, extras: dict) -> dict[str, torch.Tensor]:
        """The weighted cue loss on the frames with labels (none without them)."""
        if "cue_logits" not in extras:
            return {}
        frames = extras["frame_valid"] & batch.extras["cue_labels_valid"]
        if not frames.any():
            return {}
        read = extras["cue_logits"][frames]
        labels = batch.extras["cue_labels"][frames][:, : read.shape[-1]]
        return {"cue_loss": self.cue_loss * F.binary_cross_entropy_with_logits(read, labels)}


def xmem_model(spec: ModelSpec) -> XMemModel:
    """The XMem model. Its cue readout is as wide as the cue labels (CUE_LABEL_FIELDS; as many
    without a side file, where it exists only for vision "cues")."""
    m, x = spec.model, spec.experimental
    labels = spec.width("cue_labels") or len(CUE_LABEL_FIELDS)
    n_cues = labels if m["cue_loss"] > 0 or m["vision"] == "cues" else 0
    head = _head(
        spec, spec.width("xmem"), n_cues=n_cues, feature_drop=x["feature_drop"], vision=m["vision"]
    )
    return XMemModel(head, cue_loss=m["cue_loss"], backbone=spec.backbone)


def history_model(spec: ModelSpec) -> FrameHeadModel:
    """History-only: the head on the past track (and the map)."""
    return FrameHeadModel(_head(spec, 0), None)


def oracle_model(spec: ModelSpec) -> FrameHeadModel:
    """A diagnostic: the head fed the method's own per-frame input (the world's truth)."""
    slot = spec.inputs[-1]
    return FrameHeadModel(_head(spec, spec.width(slot)), slot)


__all__ = ["FrameHeadModel", "XMemModel", "history_model", "oracle_model", "xmem_model"]
