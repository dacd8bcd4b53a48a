"""Padding to multiples of 16, and turning user masks into XMem's one-hot object masks."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def pad_divide_by(x: torch.Tensor, d: int = 16) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Zero-pad the last two dims up to multiples of d, smaller half left/top.
    (…, H, W) → (…, H', W'), pad (left, right, top, bottom)."""
    h, w = x.shape[-2:]
    new_h = h + (d - h % d) % d
    new_w = w + (d - w % d) % d
    lh, lw = (new_h - h) // 2, (new_w - w) // 2
    pad = (lw, new_w - w - lw, lh, new_h - h - lh)
    return F.pad(x, pad), pad


def unpad(x: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
    """Undo pad_divide_by on the last two dims."""
    lw, uw, lh, uh = pad
    h, w = x.shape[-2:]
    return x[..., lh : h - uh, lw : w - uw]


def as_one_hot(mask: torch.Tensor, all_labels: Sequence[int], size: Sequence[int]) -> torch.Tensor:
    """A user mask → float one-hot (N, H, W) over all_labels (channel i = label all_labels[i]).

    Accepts (N, H, W) float one-hot/soft masks as the reference does, or an integer index mask
    (H, W) whose values are 0 (background) or labels in all_labels. Anything else — an RGB
    image, a float mask that is not an index mask, unknown labels — is refused with a message.
    """
    h, w = int(size[0]), int(size[1])
    n = len(all_labels)
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    if mask.ndim == 3 and mask.shape[-1] == 3 and mask.shape[:2] == (h, w):
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} looks like an RGB image; pass an "
            "index mask (H, W) with one integer label per pixel, or a one-hot (N, H, W)"
        )
    if (
        mask.ndim == 3
        and mask.shape[0] == 3
        and n != 3
        and mask.shape[1:] == (h, w)
        and not torch.is_floating_point(mask)
    ):
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} and dtype {mask.dtype} looks like an "
            "RGB image; pass an index mask (H, W) or a float one-hot (N, H, W)"
        )
    if mask.ndim == 2:
        if mask.shape != (h, w):
            raise ValueError(f"index mask is {tuple(mask.shape)}, image is {(h, w)}")
        if torch.is_floating_point(mask):
            if not torch.equal(mask, mask.round()):
                raise ValueError(
                    "a 2-D mask must be an index mask of integer labels; this one "
                    "has fractional values (soft masks go in as (N, H, W))"
                )
            mask = mask.long()
        present = set(torch.unique(mask).tolist()) - {0}
        unknown = present - set(all_labels)
        if unknown:
            raise ValueError(
                f"index mask has labels {sorted(unknown)} that are not in "
                f"set_all_labels({list(all_labels)})"
            )
        labels = torch.tensor(list(all_labels), device=mask.device)
        return (mask[None] == labels[:, None, None]).float()
    if mask.ndim == 3:
        if tuple(mask.shape) != (n, h, w):
            raise ValueError(
                f"one-hot mask must be (N={n}, H={h}, W={w}) for labels "
                f"{list(all_labels)}, got {tuple(mask.shape)}"
            )
        return mask if torch.is_floating_point(mask) else mask.float()
    raise ValueError(f"mask must be (H, W) index or (N, H, W) one-hot, got {tuple(mask.shape)}")
