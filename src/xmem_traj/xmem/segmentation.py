"""Training XMem's own segmentation on clips (the pass and the losses are the reference's,
xmem/training.py): the first frame of a clip is given with its mask, each later frame is
segmented from memory; AdamW, BatchNorm in eval mode. The clips come from the caller (any
object with `len()`, `load(indices) -> (frames (B, T, 3, S, S) RGB in [0, 1], masks
(B, T, S, S))` and `spread(count) -> indices`); `xmem-traj train-xmem` (train_xmem.py) feeds
it the agents of a nuScenes split.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol, Sequence

import torch
from tqdm import tqdm

from ..errors import ConfigError
from .network import XMem
from .preprocess import normalise
from .training import bootstrap_share, clip_loss, mask_iou, segment_clip

log = logging.getLogger(__name__)

#: The bootstrapped cross-entropy anneals its share of hardest pixels from 1 to 0.15 between
#: these fractions of the run's steps (the reference anneals over fixed iteration counts of
#: a far longer schedule).
START_WARM, END_WARM = 0.2, 0.7


class Clips(Protocol):
    def __len__(self) -> int: ...

    def load(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]: ...

    def spread(self, count: int) -> list[int]: ...


@dataclass
class Schedule:
    """The optimisation of a train-xmem run."""

    steps: int
    clips_per_step: int
    lr: float
    weight_decay: float
    seed: int
    bf16: bool
    progress: bool = True


def trainable_parameters(network: XMem, freeze: Sequence[str]) -> list[torch.nn.Parameter]:
    """Sets requires_grad by module prefix; ConfigError for a prefix that names nothing."""
    names = [n for n, _ in network.named_parameters()]
    unknown = [p for p in freeze if not any(n.startswith(p) for n in names)]
    if unknown:
        tops = sorted({n.split(".")[0] for n in names})
        raise ConfigError(
            f"freeze: {unknown} name no XMem module; use prefixes of {', '.join(tops)}"
        )
    out = []
    for name, param in network.named_parameters():
        param.requires_grad_(not any(name.startswith(p) for p in freeze))
        if param.requires_grad:
            out.append(param)
    return out


@torch.no_grad()
def held_out_iou(
    network: XMem, clips: Clips, count: int, *, batch: int, device: torch.device, bf16: bool
) -> float:
    """Mean mask IoU (prob > 0.5 vs the hull) over the segmented frames of `count` clips spread
    over the split; frames where both are empty are left out. NaN without clips."""
    ious = []
    gen = torch.Generator().manual_seed(0)
    chosen = clips.spread(count)
    for start in range(0, len(chosen), batch):
        frames, masks = clips.load(chosen[start : start + batch])
        frames, masks = frames.to(device), masks.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = segment_clip(network, normalise(frames), masks[:, 0], generator=gen)
        ious += [mask_iou(p, masks[:, t + 1]) for t, p in enumerate(out.probs)]
    return float(torch.cat(ious).nanmean()) if ious else float("nan")


def train_on_clips(
    network: XMem,
    params: list[torch.nn.Parameter],
    clips: Clips,
    schedule: Schedule,
    device: torch.device,
) -> tuple[list[list[float]], float]:
    """Train `params` of the network (on `device`, BatchNorm in eval mode) on random clips →
    the (ce, dice) loss of every step and the seconds it took."""
    network.to(device).eval()  # BatchNorm in eval mode, as the reference trains
    opt = torch.optim.AdamW(params, lr=schedule.lr, weight_decay=schedule.weight_decay, fused=True)
    gen = torch.Generator().manual_seed(schedule.seed)
    losses, t0 = [], time.perf_counter()
    warm = (int(START_WARM * schedule.steps), int(END_WARM * schedule.steps))
    bar = tqdm(range(schedule.steps), desc="train-xmem", disable=not schedule.progress, leave=False)
    for step in bar:
        picks = torch.randint(len(clips), (schedule.clips_per_step,), generator=gen).tolist()
        frames, masks = (x.to(device) for x in clips.load(picks))
        share = bootstrap_share(step, start_warm=warm[0], end_warm=warm[1])
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=schedule.bf16):
            loss = clip_loss(
                segment_clip(network, normalise(frames), masks[:, 0], generator=gen), masks, share
            )
        if not torch.isfinite(loss["total"]):
            raise RuntimeError(
                f"train-xmem: the loss became {float(loss['total'])} at step "
                f"{step}; lower --xmem-lr"
            )
        opt.zero_grad(set_to_none=True)
        loss["total"].backward()
        opt.step()
        losses.append([loss["ce"].item(), loss["dice"].item()])
        bar.set_postfix(ce=f"{losses[-1][0]:.3f}", dice=f"{losses[-1][1]:.3f}", refresh=False)
    return losses, time.perf_counter() - t0


__all__ = ["Clips", "Schedule", "held_out_iou", "train_on_clips", "trainable_parameters"]
