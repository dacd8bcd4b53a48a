"""ResNet trunks used by XMem's encoders (torchvision "v1.5" layout, no layer4, no fc).

Only the layers XMem keeps are built, so the modules' state-dict keys are exactly the
checkpoint's (`res2`/`layer2`/`layer3` for the key encoder, `layer1..3` for the value encoder).
Nothing is downloaded: the checkpoint provides every weight.
"""

from __future__ import annotations

import torch
from torch import nn


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)


def _downsample(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
    )


class BasicBlock(nn.Module):
    """ResNet-18 block: two 3×3 convs with BN, residual add, ReLU."""

    expansion = 1

    def __init__(
        self, in_ch: int, width: int, stride: int = 1, downsample: nn.Module | None = None
    ):
        super().__init__()
        self.conv1 = conv3x3(in_ch, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(width, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


class Bottleneck(nn.Module):
    """ResNet-50 block (v1.5: the stride sits on the 3×3 conv)."""

    expansion = 4

    def __init__(
        self, in_ch: int, width: int, stride: int = 1, downsample: nn.Module | None = None
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, width, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + shortcut)


def make_stage(
    block: type[BasicBlock] | type[Bottleneck], in_ch: int, width: int, blocks: int, stride: int
) -> nn.Sequential:
    """A ResNet stage; the first block gets a projection shortcut when shapes change."""
    out_ch = width * block.expansion
    downsample = _downsample(in_ch, out_ch, stride) if (stride != 1 or in_ch != out_ch) else None
    layers = [block(in_ch, width, stride, downsample)]
    layers += [block(out_ch, width) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)
