"""K copies of a model as one: every layer holds the K copies' weights stacked (grouped
weights), and the stacked model runs on a batch of K·B rows, seed-major (rows k·B … k·B + B − 1
belong to copy k), in one call per layer — the same arithmetic as K separate models, but
without K times the per-operation latency that bounds these small heads.

A model can be stacked when its parameters live in the layers below (Linear, Conv2d,
LayerNorm, single-layer batch-first GRU) and its forward treats rows independently (no
BatchNorm, no reduction across the batch); anything else raises NotStackable, and the caller
trains the copies one by one. `unstacked(k)` gives copy k's state dict with the original keys.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class NotStackable(TypeError):
    """A model with a layer this module cannot stack."""


def _by_seed(x: torch.Tensor, k: int) -> torch.Tensor:
    """(K·B, …) seed-major rows → (K, B, …)."""
    return x.reshape(k, x.shape[0] // k, *x.shape[1:])


class StackedLinear(nn.Module):
    def __init__(self, layers: Sequence[nn.Linear]):
        super().__init__()
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in layers]))
        self.bias = (
            nn.Parameter(torch.stack([m.bias.detach() for m in layers]))
            if layers[0].bias is not None
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, shape = self.weight.shape[0], x.shape
        flat = x.reshape(k, -1, shape[-1])  # (K, B·…, in)
        w = self.weight.transpose(1, 2).to(flat.dtype)
        y = (
            torch.baddbmm(self.bias[:, None].to(flat.dtype), flat, w)
            if self.bias is not None
            else torch.bmm(flat, w)
        )
        return y.reshape(*shape[:-1], y.shape[-1])

    @property
    def out_features(self) -> int:
        return self.weight.shape[1]

    def unstacked(self, k: int) -> dict[str, torch.Tensor]:
        out = {"weight": self.weight[k]}
        if self.bias is not None:
            out["bias"] = self.bias[k]
        return out


class StackedLayerNorm(nn.Module):
    def __init__(self, layers: Sequence[nn.LayerNorm]):
        super().__init__()
        self.shape, self.eps = layers[0].normalized_shape, layers[0].eps
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in layers]))
        self.bias = nn.Parameter(torch.stack([m.bias.detach() for m in layers]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.weight.shape[0]
        y = _by_seed(F.layer_norm(x, self.shape, eps=self.eps), k)
        view = (k,) + (1,) * (y.dim() - 2) + (-1,)
        return (y * self.weight.view(view) + self.bias.view(view)).reshape(x.shape)

    def unstacked(self, k: int) -> dict[str, torch.Tensor]:
        return {"weight": self.weight[k], "bias": self.bias[k]}


class StackedConv2d(nn.Module):
    """K convolutions as one grouped convolution over the K copies' channels."""

    def __init__(self, layers: Sequence[nn.Conv2d]):
        super().__init__()
        c = layers[0]
        if c.groups != 1 or c.padding_mode != "zeros":
            raise NotStackable("only plain Conv2d layers (groups 1, zero padding) stack")
        self.k, self.out = len(layers), c.out_channels
        self.opts = dict(stride=c.stride, padding=c.padding, dilation=c.dilation, groups=self.k)
        self.weight = nn.Parameter(torch.cat([m.weight.detach() for m in layers]))
        self.bias = (
            nn.Parameter(torch.cat([m.bias.detach() for m in layers]))
            if c.bias is not None
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.k
        b = x.shape[0] // k
        grouped = _by_seed(x, k).transpose(0, 1).reshape(b, -1, *x.shape[2:])  # (B, K·C, H, W)
        bias = None if self.bias is None else self.bias.to(x.dtype)
        y = F.conv2d(grouped, self.weight.to(x.dtype), bias, **self.opts)
        return (
            y.reshape(b, k, self.out, *y.shape[2:])
            .transpose(0, 1)
            .reshape(k * b, self.out, *y.shape[2:])
        )

    def unstacked(self, k: int) -> dict[str, torch.Tensor]:
        rows = slice(k * self.out, (k + 1) * self.out)
        out = {"weight": self.weight[rows]}
        if self.bias is not None:
            out["bias"] = self.bias[rows]
        return out


class StackedGRU(nn.Module):
    """A single-layer, batch-first GRU (PyTorch's equations, gates r, z, n), stepped by hand
    with the K copies' weights in batched matrix products."""

    NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")

    def __init__(self, layers: Sequence[nn.GRU]):
        super().__init__()
        g = layers[0]
        if g.num_layers != 1 or g.bidirectional or not g.batch_first or not g.bias:
            raise NotStackable("only single-layer, one-way, batch-first GRUs with biases stack")
        for name in self.NAMES:
            setattr(
                self, name, nn.Parameter(torch.stack([getattr(m, name).detach() for m in layers]))
            )

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None):
        """x (K·B, T, I) → output (K·B, T, H), h_n (1, K·B, H)."""
        if h0 is not None:
            raise NotStackable("a stacked GRU starts from zeros")
        k = self.weight_ih_l0.shape[0]
        xs = _by_seed(x, k)  # (K, B, T, I)
        dt = x.dtype
        w_ih, w_hh = (
            self.weight_ih_l0.transpose(1, 2).to(dt),
            self.weight_hh_l0.transpose(1, 2).to(dt),
        )
        b_ih, b_hh = self.bias_ih_l0[:, None].to(dt), self.bias_hh_l0[:, None].to(dt)
        gi_all = torch.baddbmm(b_ih, xs.flatten(1, 2), w_ih).view(*xs.shape[:3], -1)
        h = xs.new_zeros(k, xs.shape[1], self.weight_hh_l0.shape[-1])
        outs = []
        for t in range(xs.shape[2]):
            gi, gh = gi_all[:, :, t], torch.baddbmm(b_hh, h, w_hh)
            i_r, i_z, i_n = gi.chunk(3, -1)
            h_r, h_z, h_n = gh.chunk(3, -1)
            r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
            n = torch.tanh(i_n + r * h_n)
            h = (1 - z) * n + z * h
            outs.append(h)
        out = torch.stack(outs, 2).reshape(x.shape[0], xs.shape[2], -1)
        return out, h.reshape(1, x.shape[0], -1)

    def unstacked(self, k: int) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name)[k] for name in self.NAMES}


STACKED = {
    nn.Linear: StackedLinear,
    nn.LayerNorm: StackedLayerNorm,
    nn.Conv2d: StackedConv2d,
    nn.GRU: StackedGRU,
}


def stack_models(models: Sequence[nn.Module]) -> nn.Module:
    """One module that runs the K models on K·B seed-major rows; NotStackable otherwise."""
    if any(True for _ in models[0].buffers()):
        raise NotStackable("models with buffers (e.g. BatchNorm) do not stack")
    base = copy.deepcopy(models[0])
    for name, module in list(base.named_modules()):
        if not name or not any(True for _ in module.parameters(recurse=False)):
            continue
        kind = STACKED.get(type(module))
        if kind is None:
            raise NotStackable(f"{name}: {type(module).__name__} does not stack")
        parent, _, leaf = name.rpartition(".")
        layers = [m.get_submodule(name) for m in models]
        setattr(base.get_submodule(parent) if parent else base, leaf, kind(layers))
    base.stack_size = len(models)
    return base


def unstacked_state(stacked: nn.Module, k: int) -> dict[str, torch.Tensor]:
    """Copy k's state dict, with the keys of the original model."""
    out = {}
    for name, module in stacked.named_modules():
        if isinstance(module, tuple(STACKED.values())):
            prefix = f"{name}." if name else ""
            out.update({prefix + key: v.detach().clone() for key, v in module.unstacked(k).items()})
    return out


__all__ = [
    "NotStackable",
    "StackedConv2d",
    "StackedGRU",
    "StackedLayerNorm",
    "StackedLinear",
    "stack_models",
    "unstacked_state",
]
