"""What XMem is fed: RGB frames normalised with the ImageNet statistics, as the reference's
eval.py and training scripts do."""

from __future__ import annotations

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalise(frames: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1], (…, 3, H, W) → ImageNet-normalised, on the frames' device and dtype."""
    mean = torch.tensor(IMAGENET_MEAN, device=frames.device, dtype=frames.dtype)[:, None, None]
    std = torch.tensor(IMAGENET_STD, device=frames.device, dtype=frames.dtype)[:, None, None]
    return (frames - mean) / std


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "normalise"]
