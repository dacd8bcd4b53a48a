"""What the inference engine (inference_core.py) takes and gives per frame: the key encoder's
outputs of a batch of frames, one video's step output, and how a batch is split into network
calls within a pixel budget."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch


@dataclass
class KeyFeatures:
    """encode_key's outputs for B padded frames: key (B, CK, h, w), shrinkage (B, 1, h, w) |
    None, selection (B, CK, h, w) | None, f16 (B, 1024, h, w), f8 (B, 512, 2h, 2w),
    f4 (B, 256, 4h, 4w)."""

    key: torch.Tensor
    shrinkage: torch.Tensor | None
    selection: torch.Tensor | None
    f16: torch.Tensor
    f8: torch.Tensor
    f4: torch.Tensor

    def _fields(self) -> tuple:
        return self.key, self.shrinkage, self.selection, self.f16, self.f8, self.f4

    def select(self, rows: torch.Tensor) -> "KeyFeatures":
        """The frames at `rows` (B',) → KeyFeatures of B' frames."""
        return KeyFeatures(
            *(None if t is None else t.index_select(0, rows) for t in self._fields())
        )

    @staticmethod
    def cat(parts: Sequence["KeyFeatures"]) -> "KeyFeatures":
        """Frames of several KeyFeatures, in order."""
        if len(parts) == 1:
            return parts[0]
        columns = zip(*(p._fields() for p in parts))
        return KeyFeatures(*(None if col[0] is None else torch.cat(col, 0) for col in columns))


@dataclass
class StepOutput:
    """What one step saw and produced for one video, at the padded /16 grid unless stated.

    prob (N+1, H, W) unpadded, background first; key (CK, h, w); f16 (1024, h, w);
    readout (N_mem, CV, h, w) or None when the frame was not segmented; hidden (N, CH, h, w)
    after the step (None before the first mask or without sensory memory); pad (l, r, t, b);
    f8 (512, 2h, 2w) and f4 (256, 4h, 4w), the key encoder's finer stages.
    """

    prob: torch.Tensor
    key: torch.Tensor
    f16: torch.Tensor
    readout: torch.Tensor | None
    hidden: torch.Tensor | None
    pad: tuple[int, int, int, int]
    f8: torch.Tensor | None = None
    f4: torch.Tensor | None = None


#: Pixels per network call beyond which the engine splits a batch: about 8 frames of
#: 144×256 (measured: larger batches stop gaining on a CPU and lose at 480p).
DEFAULT_PIXEL_BUDGET = 8 * 144 * 256


def budget_chunks(sizes: Sequence[int], pixels: int, budget: int | None) -> list[slice]:
    """Split items of sizes[i] units (frames or objects) of `pixels` each into consecutive runs
    of at most `budget` pixels (at least one item per run); None: one run."""
    if budget is None or not sizes:
        return [slice(0, len(sizes))]
    out, start, used = [], 0, 0
    for i, n in enumerate(sizes):
        if i > start and used + n * pixels > budget:
            out.append(slice(start, i))
            start, used = i, 0
        used += n * pixels
    out.append(slice(start, len(sizes)))
    return out


__all__ = ["DEFAULT_PIXEL_BUDGET", "KeyFeatures", "StepOutput", "budget_chunks"]
