"""XMem's building blocks: encoders, key projection, fusion, CBAM, GRU-like cells, decoder.

Object ("group") tensors are kept flat: `g` is (O, C, H, W) for O objects in total, and an
`owner` LongTensor (O,) says which frame of the batch each object belongs to. The reference's
(B, N, C, H, W) layout is the special case owner = [0]*N + [1]*N + ...; the flat form is what
lets the batched engine run videos with different object counts through one network call.
Every per-object conv is an ordinary Conv2d on (O, C, H, W), as the reference's GConv2D is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .resnet import BasicBlock, Bottleneck, make_stage


def distribute(x: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
    """Per-frame features (B, C, H, W) → one copy per object (O, C, H, W)."""
    return x.index_select(0, owner)


class GroupResBlock(nn.Module):
    """Pre-activation residual block; the projection shortcut is a 3×3 conv with bias."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        # Registration order follows the checkpoint: downsample, conv1, conv2.
        self.downsample = None if in_dim == out_dim else nn.Conv2d(in_dim, out_dim, 3, padding=1)
        self.conv1 = nn.Conv2d(in_dim, out_dim, 3, padding=1)
        self.conv2 = nn.Conv2d(out_dim, out_dim, 3, padding=1)

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(g))
        out = self.conv2(F.relu(out))
        shortcut = g if self.downsample is None else self.downsample(g)
        return out + shortcut


class ChannelGate(nn.Module):
    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels, channels // reduction),
            nn.ReLU(),
            nn.Linear(channels // reduction, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hw = (x.shape[2], x.shape[3])
        att = self.mlp(F.avg_pool2d(x, hw, stride=hw))
        att = att + self.mlp(F.max_pool2d(x, hw, stride=hw))
        return x * torch.sigmoid(att)[:, :, None, None]


class _SpatialConv(nn.Module):
    """Holds the 7×7 conv under the key name `spatial.conv` as in the checkpoint."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 7, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class SpatialGate(nn.Module):
    def __init__(self):
        super().__init__()
        self.spatial = _SpatialConv()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.max(dim=1, keepdim=True)[0], x.mean(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))


class CBAM(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.ChannelGate = ChannelGate(channels)
        self.SpatialGate = SpatialGate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.SpatialGate(self.ChannelGate(x))


class FeatureFusionBlock(nn.Module):
    """cat(x broadcast, g) → block1 → g + CBAM(g) → block2."""

    def __init__(self, x_in: int, g_in: int, g_mid: int, g_out: int):
        super().__init__()
        self.block1 = GroupResBlock(x_in + g_in, g_mid)
        self.attention = CBAM(g_mid)
        self.block2 = GroupResBlock(g_mid, g_out)

    def forward(self, x: torch.Tensor, g: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
        g = self.block1(torch.cat([distribute(x, owner), g], dim=1))
        return self.block2(g + self.attention(g))


def _gru_gates(values: torch.Tensor, h: torch.Tensor, hidden_dim: int) -> torch.Tensor:
    """XMem's cell: new_h = f·h·(1−u) + u·tanh(c), channels ordered [forget, update, candidate]."""
    forget = torch.sigmoid(values[:, :hidden_dim])
    update = torch.sigmoid(values[:, hidden_dim : hidden_dim * 2])
    candidate = torch.tanh(values[:, hidden_dim * 2 :])
    return forget * h * (1 - update) + update * candidate


class HiddenReinforcer(nn.Module):
    """Deep update of the sensory memory from the value features (value first, then h)."""

    def __init__(self, g_dim: int, hidden_dim: int):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.transform = nn.Conv2d(g_dim + hidden_dim, hidden_dim * 3, 3, padding=1)

    def forward(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return _gru_gates(self.transform(torch.cat([g, h], dim=1)), h, self.hidden_dim)


class HiddenUpdater(nn.Module):
    """Per-frame sensory update from the decoder's g16, g8 and g4 (+ 1/4-res logit)."""

    def __init__(self, g_dims: tuple[int, int, int], mid_dim: int, hidden_dim: int):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.g16_conv = nn.Conv2d(g_dims[0], mid_dim, 1)
        self.g8_conv = nn.Conv2d(g_dims[1], mid_dim, 1)
        self.g4_conv = nn.Conv2d(g_dims[2], mid_dim, 1)
        self.transform = nn.Conv2d(mid_dim + hidden_dim, hidden_dim * 3, 3, padding=1)

    def forward(
        self, g16: torch.Tensor, g8: torch.Tensor, g4: torch.Tensor, h: torch.Tensor
    ) -> torch.Tensor:
        m = (
            self.g16_conv(g16)
            + self.g8_conv(F.interpolate(g8, scale_factor=1 / 2, mode="area"))
            + self.g4_conv(F.interpolate(g4, scale_factor=1 / 4, mode="area"))
        )
        return _gru_gates(self.transform(torch.cat([m, h], dim=1)), h, self.hidden_dim)


class KeyEncoder(nn.Module):
    """ResNet-50 to layer3: image (B, 3, H, W) → f16 (B, 1024), f8 (B, 512), f4 (B, 256)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.res2 = make_stage(Bottleneck, 64, 64, 3, stride=1)
        self.layer2 = make_stage(Bottleneck, 256, 128, 4, stride=2)
        self.layer3 = make_stage(Bottleneck, 512, 256, 6, stride=2)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = F.relu(self.bn1(self.conv1(image)))
        x = F.max_pool2d(x, 3, stride=2, padding=1)
        f4 = self.res2(x)
        f8 = self.layer2(f4)
        f16 = self.layer3(f8)
        return f16, f8, f4


class KeyProjection(nn.Module):
    def __init__(self, in_dim: int, key_dim: int):
        super().__init__()
        self.key_proj = nn.Conv2d(in_dim, key_dim, 3, padding=1)
        self.d_proj = nn.Conv2d(in_dim, 1, 3, padding=1)
        self.e_proj = nn.Conv2d(in_dim, key_dim, 3, padding=1)

    def forward(self, f16: torch.Tensor, *, need_shrinkage: bool, need_selection: bool):
        """f16 (B, 1024, h, w) → key (B, CK, h, w), shrinkage (B, 1, h, w) | None,
        selection (B, CK, h, w) | None."""
        shrinkage = self.d_proj(f16) ** 2 + 1 if need_shrinkage else None
        selection = torch.sigmoid(self.e_proj(f16)) if need_selection else None
        return self.key_proj(f16), shrinkage, selection


class ValueEncoder(nn.Module):
    """ResNet-18 to layer3 over [image, mask, others] per object, fused with f16."""

    def __init__(self, value_dim: int, hidden_dim: int, single_object: bool = False):
        super().__init__()
        self.single_object = single_object
        self.conv1 = nn.Conv2d(4 if single_object else 5, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = make_stage(BasicBlock, 64, 64, 2, stride=1)
        self.layer2 = make_stage(BasicBlock, 64, 128, 2, stride=2)
        self.layer3 = make_stage(BasicBlock, 128, 256, 2, stride=2)
        self.fuser = FeatureFusionBlock(1024, 256, value_dim, value_dim)
        self.hidden_reinforce = HiddenReinforcer(value_dim, hidden_dim) if hidden_dim > 0 else None

    def forward(
        self,
        image: torch.Tensor,
        f16: torch.Tensor,
        masks: torch.Tensor,
        others: torch.Tensor,
        owner: torch.Tensor,
    ):
        """image (B, 3, H, W), f16 (B, 1024, h, w), masks/others (O, H, W) → value (O, CV, h, w)."""
        g = masks[:, None] if self.single_object else torch.stack([masks, others], dim=1)
        g = torch.cat([distribute(image, owner), g], dim=1)
        g = F.max_pool2d(self.bn1(self.conv1(g)), 3, stride=2, padding=1)
        g = F.relu(g)
        g = self.layer3(self.layer2(self.layer1(g)))
        return self.fuser(f16, g, owner)


class UpsampleBlock(nn.Module):
    def __init__(self, skip_dim: int, g_up_dim: int, g_out_dim: int):
        super().__init__()
        self.skip_conv = nn.Conv2d(skip_dim, g_up_dim, 3, padding=1)
        self.out_conv = GroupResBlock(g_up_dim, g_out_dim)

    def forward(self, skip: torch.Tensor, g: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
        skip = self.skip_conv(skip)  # once per frame, not per object
        g = F.interpolate(g, scale_factor=2, mode="bilinear", align_corners=False)
        return self.out_conv(distribute(skip, owner) + g)


class Decoder(nn.Module):
    def __init__(self, value_dim: int, hidden_dim: int):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.fuser = FeatureFusionBlock(1024, value_dim + hidden_dim, 512, 512)
        self.hidden_update = (
            HiddenUpdater((512, 256, 257), 256, hidden_dim) if hidden_dim > 0 else None
        )
        self.up_16_8 = UpsampleBlock(512, 512, 256)
        self.up_8_4 = UpsampleBlock(256, 256, 256)
        self.pred = nn.Conv2d(256, 1, 3, padding=1)

    def forward(
        self,
        f16: torch.Tensor,
        f8: torch.Tensor,
        f4: torch.Tensor,
        hidden: torch.Tensor | None,
        readout: torch.Tensor,
        owner: torch.Tensor,
        *,
        h_out: bool = True,
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """readout (O, CV, h, w), hidden (O, CH, h, w) → (new hidden | None, logits (O, H, W))."""
        g = readout if self.hidden_update is None else torch.cat([readout, hidden], dim=1)
        g16 = self.fuser(f16, g, owner)
        g8 = self.up_16_8(f8, g16, owner)
        g4 = self.up_8_4(f4, g8, owner)
        logits = self.pred(F.relu(g4))
        new_hidden = None
        if h_out and self.hidden_update is not None:
            new_hidden = self.hidden_update(g16, g8, torch.cat([g4, logits], dim=1), hidden)
        logits = F.interpolate(logits, scale_factor=4, mode="bilinear", align_corners=False)
        return new_hidden, logits[:, 0]
