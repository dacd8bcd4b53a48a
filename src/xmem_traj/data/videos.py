"""Camera windows → XMem videos: targets that share a scene, time window and camera become one
multi-object video, so XMem runs once for all of them."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .agent_index import AgentRecord
from .frames import frame_masks, init_mask, load_frames, output_size


@dataclass(frozen=True)
class VideoGroup:
    """Targets that share one camera window: one XMem video with len(items) objects.
    Object i (label i+1) enters at frame init_frames[i]."""

    camera: str
    frame_tokens: tuple[str, ...]
    items: tuple[int, ...]
    init_frames: tuple[int, ...]


def group_windows(records: Sequence[AgentRecord], indices: Sequence[int] | None = None) -> list[VideoGroup]:
    """Records sharing (camera, window) become one video, objects ordered by the frame they
    enter (so labels reach memory in increasing order)."""
    buckets: dict[tuple, list[int]] = defaultdict(list)
    for i in (range(len(records)) if indices is None else indices):
        rec = records[i]
        buckets[(rec.camera, tuple(rec.frame_tokens))].append(i)
    out = []
    for (camera, tokens), items in buckets.items():
        items = sorted(items, key=lambda i: (records[i].init_frame, i))
        out.append(VideoGroup(camera, tokens, tuple(items), tuple(records[i].init_frame for i in items)))
    return out


def single_videos(records: Sequence[AgentRecord], indices: Sequence[int]) -> list[VideoGroup]:
    """One video per record (the seed sketch's scheme), for comparison with group_windows."""
    return [VideoGroup(records[i].camera, tuple(records[i].frame_tokens), (i,),
                       (records[i].init_frame,)) for i in indices]


def video_masks(records: Sequence[AgentRecord], group: VideoGroup,
                image_size: tuple[int, int] | None) -> dict[str, torch.Tensor]:
    """Per object its init mask (N, H, W), init frame (N,) and its masks at every frame
    (N, T, H, W); frame_valid (T,)."""
    size = output_size(records[group.items[0]], image_size)
    return {
        "frame_masks": torch.from_numpy(np.stack([frame_masks(records[i], size) for i in group.items])),
        "init_masks": torch.from_numpy(np.stack([init_mask(records[i], size) for i in group.items])),
        "init_frames": torch.tensor(group.init_frames),
        "frame_valid": torch.tensor([bool(t) for t in group.frame_tokens]),
    }


def group_video(records: Sequence[AgentRecord], group: VideoGroup,
                image_size: tuple[int, int] | None) -> dict[str, torch.Tensor]:
    """video_masks and the frames (T, 3, H, W) RGB in [0, 1]."""
    rec = records[group.items[0]]
    frames = load_frames(rec.frame_paths, output_size(rec, image_size))
    return {"frames": torch.from_numpy(frames), **video_masks(records, group, image_size)}


__all__ = ["VideoGroup", "group_video", "group_windows", "single_videos", "video_masks"]
