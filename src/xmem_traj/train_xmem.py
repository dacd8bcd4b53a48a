"""`xmem-traj train-xmem`: train XMem's own segmentation on agent-view clips of a nuScenes copy
— the synthetic default or yours — with the annotations' projected box hulls as the masks (the
only masks nuScenes has), so that XMem's memory features mean something without the official
checkpoint, or so that the official one adapts to your cameras. The result is a state dict
with the official key names, which `xmem-traj train --xmem-weights FILE` loads like XMem.pth.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .atomic import write_file_atomically
from .config import SegmentationConfig, TrainConfig
from .data.agent_dataset import NuScenesAgentDataset
from .data.clips import AgentClips, ConcatClips
from .data.context_objects import find_context, object_dataset
from .data.sources import resolve_source
from .data.tables import load_nuscenes
from .errors import ConfigError, DatasetError
from .traj.prepare import run_device
from .xmem.checkpoint import load_xmem
from .xmem.segmentation import (
    Clips,
    Schedule,
    held_out_iou,
    train_on_clips,
    trainable_parameters,
)

log = logging.getLogger(__name__)


def _clips(cfg: TrainConfig, seg: SegmentationConfig, report) -> tuple[Clips, dict, str]:
    """The train clips of the config's data (the agents', then those of each context object
    kind), the held-out (val split) clips by kind ("agent" first), and its dataroot."""
    source = resolve_source(cfg.data, cfg.world, progress=cfg.run.progress, report=report)
    nusc = load_nuscenes(source.dataroot, source.version)
    kinds = cfg.xmem.context_list

    def split(name: str) -> dict[str, AgentClips]:
        ds = NuScenesAgentDataset.from_config(
            cfg.data,
            source.dataroot,
            source.version,
            name,
            image_size=cfg.xmem.image_size,
            nusc=nusc,
        )
        found = find_context(nusc, source.dataroot, ds.records, kinds) if kinds else {}
        sets = {"agent": ds} | {
            kind: object_dataset(ds, kind, [r for r in recs if r is not None])
            for kind, recs in found.items()
        }
        return {
            kind: AgentClips(d, clip_frames=seg.clip_frames, crop_size=cfg.xmem.crop_size)
            for kind, d in sets.items()
        }

    train, held = split(source.train_split), split(source.val_split)
    if not len(train["agent"]):
        raise DatasetError(
            f"no target of {source.dataroot} split {source.train_split} has "
            f"{seg.clip_frames} camera frames from its first masked one; lower "
            "--clip-frames"
        )
    return ConcatClips(list(train.values())), held, source.dataroot


def _held_out_ious(network, held: dict, seg: SegmentationConfig, device, bf16: bool) -> dict:
    """Held-out mask IoU by object kind (agent, leader, signal)."""
    return {
        kind: held_out_iou(
            network, clips, seg.eval_clips, batch=seg.clips_per_step, device=device, bf16=bf16
        )
        for kind, clips in held.items()
    }


def train_segmentation(
    cfg: TrainConfig, seg: SegmentationConfig, *, report: Callable[[str], None] = log.info
) -> dict:
    """Train XMem (xmem_weights or the seeded random init) on the clips of the train split,
    report the held-out IoU (val split) before and after, and write the state dict to seg.out
    (with its summary beside it, OUT.json). Returns the summary."""
    cfg = cfg.resolved(world_file=False)  # (precision, cache; no method is trained)
    xm = cfg.xmem
    if xm.crop_size % 16:
        raise ConfigError(
            f"crop_size {xm.crop_size}: train-xmem needs a multiple of 16 (XMem's stride)"
        )
    network = load_xmem(xm.xmem_weights or None, seed=cfg.optim.seed)
    params = trainable_parameters(network, seg.freeze_list)
    if not params:
        raise ConfigError(f"freeze: {seg.freeze!r} leaves nothing of XMem to train")
    train, held, dataroot = _clips(cfg, seg, report)
    device = run_device(cfg)
    bf16 = xm.precision == "bf16"
    network.to(device).eval()
    report(
        f"train-xmem: {len(train)} clips of {train.split} ({seg.clip_frames} frames, "
        f"{xm.crop_size}² crops), {sum(p.numel() for p in params) / 1e6:.1f} M parameters "
        "trained"
        + (f" ({', '.join(seg.freeze_list)} fixed)" if seg.freeze_list else "")
        + f", {seg.steps} steps of {seg.clips_per_step} on {device.type}, precision "
        f"{xm.precision}"
    )
    iou = {"before": _held_out_ious(network, held, seg, device, bf16)}
    schedule = Schedule(
        seg.steps,
        seg.clips_per_step,
        seg.xmem_lr,
        seg.xmem_weight_decay,
        cfg.optim.seed,
        bf16,
        cfg.run.progress,
    )
    losses, seconds = train_on_clips(network, params, train, schedule, device)
    iou["after"] = _held_out_ious(network, held, seg, device, bf16)
    report(
        "held-out mask IoU, before → after: "
        + ", ".join(f"{k} {iou['before'][k]:.3f} → {iou['after'][k]:.3f}" for k in held)
    )
    summary = _summary(cfg, seg, (train, held, dataroot), losses, seconds, iou)
    _write(seg.out, {k: v.detach().cpu() for k, v in network.state_dict().items()}, summary)
    return summary


def _summary(cfg: TrainConfig, seg: SegmentationConfig, clips, losses, seconds, iou) -> dict:
    """What OUT.json records: the clips, the loss at the start and the end, the held-out IoU
    before and after, and the options."""
    train, held, dataroot = clips
    tenth = max(1, len(losses) // 10)
    xm = cfg.xmem
    options = {
        **vars(seg),
        "xmem_weights": xm.xmem_weights,
        "seed": cfg.optim.seed,
        "crop_size": xm.crop_size,
        "precision": xm.precision,
    }
    return {
        "out": seg.out,
        "dataroot": dataroot,
        "train_split": train.split,
        "held_out_split": held["agent"].split,
        "train_clips": len(train),
        "held_out_clips": {k: min(seg.eval_clips, len(c)) for k, c in held.items()},
        "steps": seg.steps,
        "seconds": round(seconds, 1),
        "loss_first_tenth": np.mean(losses[:tenth], 0).tolist(),
        "loss_last_tenth": np.mean(losses[-tenth:], 0).tolist(),
        "held_out_iou": iou,
        "options": options,
    }


def _write(out: str, state: dict, summary: dict) -> None:
    """The state dict and its summary (OUT.json), each atomically, readable by others."""

    def weights(tmp: Path) -> None:
        torch.save(state, tmp)
        tmp.chmod(0o644)  # a weights file to share, not a private temporary

    def text(tmp: Path) -> None:
        tmp.write_text(json.dumps(summary, indent=1))
        tmp.chmod(0o644)

    write_file_atomically(Path(out), weights)
    write_file_atomically(Path(out + ".json"), text)


__all__ = ["train_segmentation"]
