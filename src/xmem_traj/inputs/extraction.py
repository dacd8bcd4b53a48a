"""Feature extraction over many camera windows with per-frame work done once.

Windows are ordered by camera and time, so that overlapping ones (the same camera frames in
several targets' windows) sit in the same or neighbouring lockstep chunks. An extraction plan
says, for every chunk, which frames it is the first to need and which frames it is the last
to need: each frame is decoded (in DataLoader workers, overlapping XMem) and key-encoded (one
batched encode_key call per chunk) exactly once, kept while a chunk still needs it, and then
dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..data.agent_dataset import NuScenesAgentDataset
from ..data.videos import FrameSource, VideoGroup
from ..xmem.engine_io import KeyFeatures
from .backbone import XMemBackbone

log = logging.getLogger(__name__)


@dataclass
class ExtractionPlan:
    chunks: list[list[VideoGroup]]
    frame_ids: list[list[list[str]]]  # per chunk, per video: its frame ids ('' padding)
    new_frames: list[list[str]]  # per chunk: frame ids it is the first to need
    done_frames: list[list[str]]  # per chunk: frame ids it is the last to need

    @property
    def video_frames(self) -> int:
        return sum(bool(f) for chunk in self.frame_ids for ids in chunk for f in ids)


def plan_extraction(
    ds: NuScenesAgentDataset,
    groups: Sequence[VideoGroup],
    videos_per_step: int,
    source: FrameSource,
) -> ExtractionPlan:
    """Chunks of `videos_per_step` windows in (camera, scene, time) order."""

    def order(g: VideoGroup):
        rec = ds.records[g.items[0]]
        first = next((ts for ts in rec.frame_timestamps if ts), 0)
        return g.camera, rec.scene_name, first

    ordered = sorted(groups, key=order)
    chunks = [ordered[i : i + videos_per_step] for i in range(0, len(ordered), videos_per_step)]
    frame_ids = [[source.ids(g) for g in chunk] for chunk in chunks]
    new_frames: list[list[str]] = [[] for _ in chunks]
    done_frames: list[list[str]] = [[] for _ in chunks]
    last_chunk: dict[str, int] = {}
    for c, chunk_ids in enumerate(frame_ids):
        for fid in dict.fromkeys(f for ids in chunk_ids for f in ids if f):
            if fid not in last_chunk:
                new_frames[c].append(fid)
            last_chunk[fid] = c
    for fid, c in last_chunk.items():
        done_frames[c].append(fid)
    return ExtractionPlan(chunks, frame_ids, new_frames, done_frames)


class _ChunkInputs(Dataset):
    """What a chunk needs from disk: its new frames (decoded) and its videos' masks."""

    def __init__(self, source: FrameSource, plan: ExtractionPlan):
        self.source, self.plan = source, plan

    def __len__(self) -> int:
        return len(self.plan.chunks)

    def __getitem__(self, c: int) -> dict:
        source, plan = self.source, self.plan
        size = source.size(plan.chunks[c][0])
        new = plan.new_frames[c]
        images = (
            np.stack([source.load(fid, size) for fid in new])
            if new
            else np.zeros((0, 3, *size), np.float32)
        )
        return {
            "chunk": c,
            "tokens": new,
            "images": torch.from_numpy(images),
            "masks": [source.masks(g) for g in plan.chunks[c]],
        }


@dataclass
class ExtractionStats:
    video_frames: int = 0  # frames stepped by XMem, summed over videos
    decoded: int = 0  # JPEGs decoded
    key_encoded: int = 0  # frames through encode_key


def extract_groups(
    backbone: XMemBackbone,
    ds: NuScenesAgentDataset,
    groups: Sequence[VideoGroup],
    *,
    videos_per_step: int,
    crop_size: int = 112,
    num_workers: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
    desc: str = "XMem features",
    stats: ExtractionStats | None = None,
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Run XMem over the videos, `videos_per_step` in lockstep → {item: (features (T, C),
    valid (T,))}; frames shared by videos are decoded and key-encoded once."""
    source = FrameSource(ds.records, ds.image_size, crop_size)
    plan = plan_extraction(ds, groups, videos_per_step, source)
    stats = stats if stats is not None else ExtractionStats()
    device = torch.device(device)
    loader = DataLoader(
        _ChunkInputs(source, plan),
        batch_size=None,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    images: dict[str, torch.Tensor] = {}
    keys: dict[str, KeyFeatures] = {}
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    bar = tqdm(total=len(groups), desc=desc, unit="video", disable=not progress, leave=False)
    with torch.no_grad():
        for item in loader:
            c, chunk = item["chunk"], plan.chunks[item["chunk"]]
            new = item["images"].to(device, non_blocking=True)
            if len(item["tokens"]):
                encoded = backbone.encode_frames(new)
                for j, tok in enumerate(item["tokens"]):
                    images[tok] = new[j]
                    keys[tok] = encoded.select(torch.tensor([j], device=device))
            stats.decoded += len(item["tokens"])
            stats.key_encoded += len(item["tokens"])
            feats, valid = _run_chunk(
                backbone, plan.frame_ids[c], item["masks"], images, keys, device
            )
            for b, g in enumerate(chunk):
                for i, idx in enumerate(g.items):
                    out[idx] = (feats[b, i].cpu().numpy(), valid[b, i].cpu().numpy())
            for tok in plan.done_frames[c]:
                del images[tok], keys[tok]
            bar.update(len(chunk))
    bar.close()
    stats.video_frames += plan.video_frames
    log.info(
        "%s: %d video-frames, %d frames decoded and key-encoded once",
        desc,
        stats.video_frames,
        stats.key_encoded,
    )
    return out


def _run_chunk(
    backbone: XMemBackbone,
    frame_ids: list[list[str]],
    masks: list[dict],
    images: dict[str, torch.Tensor],
    keys: dict[str, KeyFeatures],
    device,
):
    """The chunk's videos through the backbone with their stored frames and key features."""
    t_len = len(frame_ids[0])
    some = images[next(f for ids in frame_ids for f in ids if f)]
    frames = torch.zeros((len(frame_ids), t_len, *some.shape), dtype=some.dtype, device=device)
    for b, ids in enumerate(frame_ids):
        for t, fid in enumerate(ids):
            if fid:
                frames[b, t] = images[fid]

    def key_features(t: int, videos: list[int]) -> KeyFeatures:
        return KeyFeatures.cat([keys[frame_ids[v][t]] for v in videos])

    return backbone(
        frames,
        [m["init_masks"].to(device) for m in masks],
        [m["init_frames"].tolist() for m in masks],
        [m["frame_masks"].to(device) for m in masks],
        key_features=key_features,
    )


__all__ = ["ExtractionPlan", "ExtractionStats", "extract_groups", "plan_extraction"]
