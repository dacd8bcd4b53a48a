"""MTP (Cui et al., ICRA 2019) and CoverNet (Phan-Minh et al., CVPR 2020) as the
nuscenes-devkit ships them (nuscenes.prediction.models: mtp.MTP + MTPLoss, covernet.CoverNet +
ConstantLatticeLoss, backbone.ResNetBackbone / MobileNetBackbone, random init), wrapped in the
model contract (traj/models/__init__.py). They read the devkit's input raster (slot "raster",
uint8, read as [0, 1]) and agent state vector (slot "agent_state"), inputs/rasters.py.

Frames: the devkit's agent frame (PredictHelper's in_agent_frame: the agent at the origin,
heading +y) is ours, and the raster is drawn with the agent heading up; the models are trained
on our futures in that frame, so their outputs are used as they come. What is converted:
MTP's flat output (B, K·F·2 + K), laid out as MTPLoss reads it, becomes (B, K, F, 2) and
(B, K); in eval mode MTP returns softmaxed probabilities, whose log is given as logits (their
softmax is the same probabilities). CoverNet scores every member of its trajectory set
(inputs/lattice.py); its K best (K = the run's modes) are its modes, ranked by its last
layer's output before the ReLU the devkit applies to it (DevkitCoverNet.scores says why).
Both losses are the devkit's own, on the targets with a complete future (the devkit's losses
take no mask), in float32 (under bf16 autocast too: they mix the outputs' and the targets'
dtypes).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ..batch import TrajBatch
from . import ModelSpec

TINY = 1e-12
# MTPLoss picks its best mode with float() on a tensor that requires grad, every target of every
# step: torch warns each time; the value is meant to leave the graph.
warnings.filterwarnings(
    "ignore",
    message="Converting a tensor with requires_grad=True to a scalar",
    module="nuscenes.prediction.models.mtp",
)


def devkit_models():
    """The devkit's backbone, mtp and covernet modules (torchvision: imported when first
    used)."""
    from nuscenes.prediction.models import backbone, covernet, mtp

    return backbone, mtp, covernet


def make_backbone(name: str) -> nn.Module:
    """The devkit's backbone of that name (resnet18 … resnet152, mobilenet_v2)."""
    backbone = devkit_models()[0]
    if name.startswith("mobilenet"):
        return backbone.MobileNetBackbone(name)
    return backbone.ResNetBackbone(name)


def raster_image(batch: TrajBatch) -> torch.Tensor:
    """The raster (B, 3, H, W) uint8 → float in [0, 1]."""
    return batch.extras["raster"].float() / 255.0


def full_futures(batch: TrajBatch) -> torch.Tensor:
    """(B,) bool: targets whose future is complete (what the devkit's losses can score)."""
    return batch.future_valid.all(1)


class DevkitMTP(nn.Module):
    """The devkit's MTP on the raster and agent state → K modes of F steps."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        mtp = devkit_models()[1]
        m = spec.model
        self.num_modes, self.future_steps = m["modes"], spec.future_steps
        self.net = mtp.MTP(
            make_backbone(m["peer_backbone"]),
            self.num_modes,
            seconds=spec.future_steps / 2,
            frequency_in_hz=2,
            n_hidden_layers=m["peer_hidden"],
            input_shape=tuple(spec.shapes["raster"]),
        )
        self.loss_fn = mtp.MTPLoss(self.num_modes)

    def split(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """MTP's flat output → trajectories (B, K, F, 2), mode scores (B, K)."""
        k = self.num_modes
        traj = out[:, :-k].reshape(out.shape[0], k, self.future_steps, 2)
        return traj, out[:, -k:]

    def forward(self, batch: TrajBatch) -> tuple[torch.Tensor, torch.Tensor]:
        traj, scores = self.split(self.net(raster_image(batch), batch.extras["agent_state"]))
        if not self.training:  # MTP softmaxes in eval mode: back to logits
            scores = scores.clamp_min(TINY).log()
        return traj, scores

    def forward_train(self, batch: TrajBatch):
        out = self.net(raster_image(batch), batch.extras["agent_state"])
        traj, scores = self.split(out)
        return traj, scores, {"mtp_output": out}

    def losses(self, batch: TrajBatch, traj, logits, extras: dict) -> dict[str, torch.Tensor]:
        """MTPLoss (its mode classification and smooth-L1 regression) replaces the default."""
        full = full_futures(batch)
        if not full.any():
            return {"loss": extras["mtp_output"].sum() * 0.0}
        out = extras["mtp_output"][full].float()  # the devkit's loss mixes in the targets' dtype
        return {"loss": self.loss_fn(out, batch.traj[full][:, None].float())}


class DevkitCoverNet(nn.Module):
    """The devkit's CoverNet: scores over a fixed trajectory set (slot "lattice", a buffer),
    its K best as the modes."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        covernet = devkit_models()[2]
        m = spec.model
        shape = tuple(spec.shapes["lattice"])
        given = (spec.constants or {}).get("lattice")
        lattice = torch.as_tensor(given, dtype=torch.float32) if given is not None else None
        self.register_buffer("lattice", lattice if lattice is not None else torch.zeros(shape))
        self.modes = min(m["modes"], shape[0])
        self.net = covernet.CoverNet(
            make_backbone(m["peer_backbone"]),
            shape[0],
            n_hidden_layers=[m["peer_hidden"]],
            input_shape=tuple(spec.shapes["raster"]),
        )
        self._loss_class = covernet.ConstantLatticeLoss

    def ranked(self, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores over the set (B, L) → its K best members (B, K, F, 2) and their scores."""
        best = scores.topk(self.modes, dim=1)
        return self.lattice[best.indices], best.values

    def scores(self, batch: TrajBatch) -> torch.Tensor:
        """(B, L) scores over the set: CoverNet's layers as the devkit's forward runs them,
        but the last one's output read before the ReLU the devkit applies to it too (since its
        PR #758): ReLU'd logits die (both seeds of a run collapsed to the same constant
        prediction within two epochs); the paper's CoverNet is a softmax over linear scores."""
        net = self.net
        x = torch.cat([net.backbone(raster_image(batch)), batch.extras["agent_state"]], 1)
        for linear in net.head[:-1]:
            x = net.relu(linear(x))
        return net.head[-1](x)

    def forward(self, batch: TrajBatch) -> tuple[torch.Tensor, torch.Tensor]:
        return self.ranked(self.scores(batch))

    def forward_train(self, batch: TrajBatch):
        scores = self.scores(batch)
        return *self.ranked(scores), {"set_scores": scores}

    def losses(self, batch: TrajBatch, traj, logits, extras: dict) -> dict[str, torch.Tensor]:
        """ConstantLatticeLoss (cross-entropy to the member closest to the future, by mean
        pointwise distance) replaces the default."""
        full = full_futures(batch)
        scores = extras["set_scores"]
        if not full.any():
            return {"loss": scores.sum() * 0.0}
        loss = self._loss_class(self.lattice.detach().cpu())
        return {"loss": loss(scores[full].float(), batch.traj[full][:, None].float())}


def mtp_model(spec: ModelSpec) -> DevkitMTP:
    return DevkitMTP(spec)


def covernet_model(spec: ModelSpec) -> DevkitCoverNet:
    return DevkitCoverNet(spec)


__all__ = ["DevkitCoverNet", "DevkitMTP", "covernet_model", "devkit_models", "mtp_model"]
