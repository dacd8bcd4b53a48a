"""An inference copy of an XMem network for feature extraction: BatchNorm folded into the
convolution before it, weights in the compute dtype, optionally channels-last.

The reference-faithful network (what the fixtures test) is left untouched; the copy computes
the same function up to float rounding (folding reorders a multiply and an add per channel).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from .network import XMem


@dataclass(frozen=True)
class InferenceSettings:
    """dtype: the weights' and activations' dtype (bfloat16 runs under autocast);
    channels_last: the memory format of the convolutions' weights (and so their outputs)."""

    dtype: torch.dtype = torch.float32
    channels_last: bool = False


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A conv computing bn(conv(x)) with BatchNorm's running statistics (eval mode)."""
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    fused = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        bias=True,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
    )
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
    with torch.no_grad():
        fused.weight.copy_(conv.weight * scale[:, None, None, None])
        fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
    return fused


def fold_batchnorms(module: nn.Module) -> int:
    """In place: every `convN`/`bnN` attribute pair and every Sequential(Conv2d, BatchNorm2d)
    becomes the folded conv and an Identity → the number folded."""
    folded = 0
    for parent in list(module.modules()):
        if isinstance(parent, nn.Sequential):
            items = list(parent)
            for i in range(len(items) - 1):
                if isinstance(items[i], nn.Conv2d) and isinstance(items[i + 1], nn.BatchNorm2d):
                    parent[i] = fold_conv_bn(items[i], items[i + 1])
                    parent[i + 1] = nn.Identity()
                    folded += 1
            continue
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d) and name.startswith("bn"):
                conv = getattr(parent, "conv" + name[2:], None)
                if isinstance(conv, nn.Conv2d):
                    setattr(parent, "conv" + name[2:], fold_conv_bn(conv, child))
                    setattr(parent, name, nn.Identity())
                    folded += 1
    return folded


def inference_copy(network: XMem, settings: InferenceSettings) -> XMem:
    """A frozen, BatchNorm-folded copy of `network` in settings.dtype (and memory format)."""
    net = copy.deepcopy(network).eval()
    fold_batchnorms(net)
    net = net.to(dtype=settings.dtype)
    if settings.channels_last:
        net = net.to(memory_format=torch.channels_last)
    for p in net.parameters():
        p.requires_grad_(False)
    return net


__all__ = ["InferenceSettings", "fold_batchnorms", "fold_conv_bn", "inference_copy"]
