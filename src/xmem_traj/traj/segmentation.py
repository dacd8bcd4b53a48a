"""`xmem-traj train-xmem`: train XMem's own segmentation on agent-view clips of a nuScenes copy —
the synthetic default or yours — with the annotations' projected box hulls as the masks (the
only masks nuScenes has), so that XMem's memory features mean something without the official
checkpoint, or so that the official one adapts to your cameras. The pass and the losses are the
reference's (xmem/training.py); the result is a state dict with the official key names, which
`xmem-traj train --xmem-weights FILE` loads like XMem.pth.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from ..atomic import write_file_atomically
from ..config import SegmentationConfig, TrainConfig
from ..data.agent_dataset import NuScenesAgentDataset
from ..data.agent_index import load_nuscenes
from ..data.sources import resolve_source
from ..data.videos import FrameSource, single_videos
from ..errors import ConfigError, DatasetError
from ..xmem.checkpoint import load_xmem
from ..xmem.network import XMem
from ..xmem.training import bootstrap_share, clip_loss, mask_iou, segment_clip
from .backbone import normalise

log = logging.getLogger(__name__)

#: The bootstrapped cross-entropy anneals its share of hardest pixels from 1 to 0.15 between
#: these fractions of the run's steps (the reference anneals over fixed iteration counts of
#: a far longer schedule).
START_WARM, END_WARM = 0.2, 0.7


class AgentClips:
    """The clips of one split: every target whose window has clip_frames real frames from the
    agent's first masked frame on, as agent-centric crops (crop×crop) with the agent's hull
    masks (the first frame's is the one XMem is given)."""

    def __init__(self, ds: NuScenesAgentDataset, *, clip_frames: int, crop_size: int):
        self.records, self.clip_frames, self.crop_size = ds.records, clip_frames, crop_size
        self.split = ds.split
        self.source = FrameSource(ds.records, None, crop_size)
        self.items = [i for i, r in enumerate(ds.records)
                      if r.init_frame + clip_frames <= len(r.frame_tokens)
                      and all(r.frame_tokens[r.init_frame:r.init_frame + clip_frames])]

    def __len__(self) -> int:
        return len(self.items)

    def spread(self, count: int) -> list[int]:
        """`count` clips spread evenly over the split (its scenes and agents), in order."""
        if count <= 0 or not self.items:
            return []
        return np.unique(np.linspace(0, len(self.items) - 1, min(count, len(self.items))).round()
                         .astype(int)).tolist()

    def load(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Clips `indices` (into self.items) → frames (B, T, 3, S, S) RGB in [0, 1], masks
        (B, T, S, S) float. Only the clip's frames are decoded."""
        frames, masks = [], []
        size = (self.crop_size, self.crop_size)
        for k in indices:
            rec_index = self.items[k]
            start = self.records[rec_index].init_frame
            window = slice(start, start + self.clip_frames)
            group = single_videos(self.records, [rec_index], "agent")[0]
            ids = self.source.ids(group)[window]
            given = self.source.masks(group)
            m = given["frame_masks"][0, window].float()
            m[0] = given["init_masks"][0].float()
            frames.append(torch.from_numpy(np.stack([self.source.load(fid, size) for fid in ids])))
            masks.append(m)
        return torch.stack(frames), torch.stack(masks)


def trainable_parameters(network: XMem, freeze: Sequence[str]) -> list[torch.nn.Parameter]:
    """Sets requires_grad by module prefix; ConfigError for a prefix that names nothing."""
    names = [n for n, _ in network.named_parameters()]
    unknown = [p for p in freeze if not any(n.startswith(p) for n in names)]
    if unknown:
        tops = sorted({n.split(".")[0] for n in names})
        raise ConfigError(f"freeze: {unknown} name no XMem module; use prefixes of {', '.join(tops)}")
    out = []
    for name, param in network.named_parameters():
        param.requires_grad_(not any(name.startswith(p) for p in freeze))
        if param.requires_grad:
            out.append(param)
    return out


@torch.no_grad()
def held_out_iou(network: XMem, clips: AgentClips, count: int, *, batch: int, device: torch.device,
                 bf16: bool) -> float:
    """Mean mask IoU (prob > 0.5 vs the hull) over the segmented frames of `count` clips spread
    over the split; frames where both are empty are left out. NaN without clips."""
    ious = []
    gen = torch.Generator().manual_seed(0)
    chosen = clips.spread(count)
    for start in range(0, len(chosen), batch):
        frames, masks = clips.load(chosen[start:start + batch])
        frames, masks = frames.to(device), masks.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = segment_clip(network, normalise(frames), masks[:, 0], generator=gen)
        ious += [mask_iou(p, masks[:, t + 1]) for t, p in enumerate(out.probs)]
    return float(torch.cat(ious).nanmean()) if ious else float("nan")


def train_segmentation(cfg: TrainConfig, seg: SegmentationConfig, *,
                       report: Callable[[str], None] = log.info) -> dict:
    """Train XMem (cfg.xmem_weights or the seeded random init) on the clips of cfg's train split,
    report the held-out IoU (val split) before and after, and write the state dict to seg.out
    (with its summary beside it, OUT.json). Returns the summary."""
    if cfg.crop_size % 16:
        raise ConfigError(f"crop_size {cfg.crop_size}: train-xmem needs a multiple of 16 (XMem's stride)")
    network = load_xmem(cfg.xmem_weights or None, seed=cfg.seed)
    params = trainable_parameters(network, seg.freeze_list)
    if not params:
        raise ConfigError(f"freeze: {seg.freeze!r} leaves nothing of XMem to train")
    source = resolve_source(cfg, report)
    nusc = load_nuscenes(source.dataroot, source.version)
    split = lambda name: AgentClips(NuScenesAgentDataset.from_config(  # noqa: E731
        cfg, source.dataroot, source.version, name, nusc=nusc), clip_frames=seg.clip_frames,
        crop_size=cfg.crop_size)
    train, held = split(source.train_split), split(source.val_split)
    if not len(train):
        raise DatasetError(f"no target of {source.dataroot} split {source.train_split} has "
                           f"{seg.clip_frames} camera frames from its first masked one; lower --clip-frames")
    if cfg.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(f"accelerator {cfg.accelerator}: no CUDA device is visible to torch here")
    device = torch.device("cuda" if cfg.accelerator != "cpu" and torch.cuda.is_available() else "cpu")
    bf16 = cfg.resolved_precision == "bf16"
    network.to(device).eval()  # BatchNorm in eval mode, as the reference trains
    report(f"train-xmem: {len(train)} clips of {train.split} ({seg.clip_frames} frames, "
           f"{cfg.crop_size}² crops), {sum(p.numel() for p in params) / 1e6:.1f} M parameters trained"
           + (f" ({', '.join(seg.freeze_list)} fixed)" if seg.freeze_list else "")
           + f", {seg.steps} steps of {seg.clips_per_step} on {device.type}, precision {cfg.resolved_precision}")
    iou = {"before": held_out_iou(network, held, seg.eval_clips, batch=seg.clips_per_step,
                                  device=device, bf16=bf16)}
    opt = torch.optim.AdamW(params, lr=seg.xmem_lr, weight_decay=seg.xmem_weight_decay, fused=True)
    gen = torch.Generator().manual_seed(cfg.seed)
    losses, t0 = [], time.perf_counter()
    bar = tqdm(range(seg.steps), desc="train-xmem", disable=not cfg.progress, leave=False)
    for step in bar:
        picks = torch.randint(len(train), (seg.clips_per_step,), generator=gen).tolist()
        frames, masks = (x.to(device) for x in train.load(picks))
        share = bootstrap_share(step, start_warm=int(START_WARM * seg.steps), end_warm=int(END_WARM * seg.steps))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = clip_loss(segment_clip(network, normalise(frames), masks[:, 0], generator=gen), masks, share)
        if not torch.isfinite(loss["total"]):
            raise RuntimeError(f"train-xmem: the loss became {float(loss['total'])} at step {step}; "
                               "lower --xmem-lr")
        opt.zero_grad(set_to_none=True)
        loss["total"].backward()
        opt.step()
        losses.append([loss["ce"].item(), loss["dice"].item()])
        bar.set_postfix(ce=f"{losses[-1][0]:.3f}", dice=f"{losses[-1][1]:.3f}", refresh=False)
    seconds = time.perf_counter() - t0
    iou["after"] = held_out_iou(network, held, seg.eval_clips, batch=seg.clips_per_step,
                                device=device, bf16=bf16)
    tenth = max(1, len(losses) // 10)
    summary = {"out": seg.out, "dataroot": source.dataroot, "train_split": train.split,
               "held_out_split": held.split, "train_clips": len(train),
               "held_out_clips": min(seg.eval_clips, len(held)), "steps": seg.steps,
               "seconds": round(seconds, 1), "loss_first_tenth": np.mean(losses[:tenth], 0).tolist(),
               "loss_last_tenth": np.mean(losses[-tenth:], 0).tolist(), "held_out_iou": iou,
               "options": {**vars(seg), "xmem_weights": cfg.xmem_weights, "seed": cfg.seed,
                           "crop_size": cfg.crop_size, "precision": cfg.resolved_precision}}
    state = {k: v.detach().cpu() for k, v in network.state_dict().items()}

    def write(tmp: Path) -> None:
        torch.save(state, tmp)
        tmp.chmod(0o644)  # a weights file to share, not a private temporary
    write_file_atomically(Path(seg.out), write)

    def write_summary(tmp: Path) -> None:
        tmp.write_text(json.dumps(summary, indent=1))
        tmp.chmod(0o644)
    write_file_atomically(Path(seg.out + ".json"), write_summary)
    return summary


__all__ = ["AgentClips", "held_out_iou", "train_segmentation", "trainable_parameters"]
