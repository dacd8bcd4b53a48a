"""Camera windows → XMem videos, in one of two views:

- "frame": the whole camera frame; targets that share a scene, time window and camera become
  one multi-object video, so XMem runs once for all of them;
- "agent": an agent-centric view, one video per target, each frame cropped around the agent's
  projected box (square, with a margin) and scaled to crop×crop pixels, so that its lamps are
  more than a pixel. A crop depends only on the camera frame and the agent, so the targets of
  one agent share their crops.

A frame of a video has an id (the sample_data token, or token#instance for a crop) by which
extraction decodes and key-encodes it once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from shapely.geometry import Polygon

from ..projection import rasterize
from .frames import frame_masks, init_mask, load_frame, load_frames, output_size
from .records import AgentRecord

VIEWS = ("frame", "agent")
CROP_MARGIN = 0.3  # crop side = box side × (1 + 2 × margin)
MIN_CROP_PX = 24  # smallest crop side in source pixels


@dataclass(frozen=True)
class VideoGroup:
    """Targets that share one video: len(items) objects, object i (label i+1) entering at frame
    init_frames[i]. view "agent" videos hold one target, seen in crops around it."""

    camera: str
    frame_tokens: tuple[str, ...]
    items: tuple[int, ...]
    init_frames: tuple[int, ...]
    view: str = "frame"


def group_windows(
    records: Sequence[AgentRecord], indices: Sequence[int] | None = None
) -> list[VideoGroup]:
    """Records sharing (camera, window) become one video, objects ordered by the frame they
    enter (so labels reach memory in increasing order)."""
    buckets: dict[tuple, list[int]] = defaultdict(list)
    for i in range(len(records)) if indices is None else indices:
        rec = records[i]
        buckets[(rec.camera, tuple(rec.frame_tokens))].append(i)
    out = []
    for (camera, tokens), items in buckets.items():
        items = sorted(items, key=lambda i: (records[i].init_frame, i))
        out.append(
            VideoGroup(camera, tokens, tuple(items), tuple(records[i].init_frame for i in items))
        )
    return out


def single_videos(
    records: Sequence[AgentRecord], indices: Sequence[int], view: str = "frame"
) -> list[VideoGroup]:
    """One video per record (the seed sketch's scheme; the agent view's)."""
    return [
        VideoGroup(
            records[i].camera, tuple(records[i].frame_tokens), (i,), (records[i].init_frame,), view
        )
        for i in indices
    ]


def videos(
    records: Sequence[AgentRecord], view: str, indices: Sequence[int] | None = None
) -> list[VideoGroup]:
    """The videos XMem runs for a view."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    if view == "frame":
        return group_windows(records, indices)
    return single_videos(records, range(len(records)) if indices is None else indices, "agent")


def crop_boxes(rec: AgentRecord) -> list[tuple[float, float, float, float] | None]:
    """Per window frame the square crop (x0, y0, x1, y1) in source pixels around the agent's
    hull; frames without a hull take the nearest one's box (None: padding frames)."""
    boxes: list = []
    for hull in rec.frame_hulls:
        if not hull:
            boxes.append(None)
            continue
        pts = np.asarray(hull)
        (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
        side = max(x1 - x0, y1 - y0, MIN_CROP_PX) * (1 + 2 * CROP_MARGIN)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        boxes.append((cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
    known = [i for i, b in enumerate(boxes) if b is not None]
    return [
        b if b is not None or not tok else boxes[min(known, key=lambda k: abs(k - i))]
        for i, (b, tok) in enumerate(zip(boxes, rec.frame_tokens))
    ]


def load_crop(path: str, box, size: tuple[int, int]) -> np.ndarray:
    """The box of a JPEG (source pixels, may reach outside: black there) scaled to size (H, W)
    → float32 RGB (3, H, W) in [0, 1]."""
    from ..errors import DatasetError

    try:
        with Image.open(path) as im:
            crop = im.convert("RGB").transform(
                (size[1], size[0]), Image.EXTENT, box, Image.BILINEAR
            )
    except FileNotFoundError:
        raise DatasetError(f"missing image {path}") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise DatasetError(f"cannot read image {path}: {err}") from None
    return np.asarray(crop, dtype=np.float32).transpose(2, 0, 1) / 255.0


def _crop_mask(hull, box, size: tuple[int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return rasterize(
        Polygon([(x - x0, y - y0) for x, y in hull]), x1 - x0, y1 - y0, size[1], size[0]
    )


class FrameSource:
    """The frames and masks of videos of one view, by frame id."""

    def __init__(
        self, records: Sequence[AgentRecord], image_size: tuple[int, int] | None, crop_size: int
    ):
        self.records, self.image_size, self.crop_size = records, image_size, crop_size
        self._where: dict[str, tuple] = {}

    def size(self, group: VideoGroup) -> tuple[int, int]:
        if group.view == "agent":
            return self.crop_size, self.crop_size
        return output_size(self.records[group.items[0]], self.image_size)

    def ids(self, group: VideoGroup) -> list[str]:
        """Frame ids of a video ('' for padding), remembering how to load each."""
        rec = self.records[group.items[0]]
        if group.view == "frame":
            for tok, path in zip(rec.frame_tokens, rec.frame_paths):
                if tok:
                    self._where[tok] = (path, None)
            return list(rec.frame_tokens)
        out = []
        for tok, path, box in zip(rec.frame_tokens, rec.frame_paths, crop_boxes(rec)):
            fid = f"{tok}#{rec.instance_token}" if tok else ""
            if tok:
                self._where[fid] = (path, box)
            out.append(fid)
        return out

    def load(self, frame_id: str, size: tuple[int, int]) -> np.ndarray:
        path, box = self._where[frame_id]
        return load_frame(path, size) if box is None else load_crop(path, box, size)

    def masks(self, group: VideoGroup) -> dict[str, torch.Tensor]:
        """Per object its init mask (N, H, W), init frame (N,) and masks at every frame
        (N, T, H, W)."""
        if group.view == "frame":
            return video_masks(self.records, group, self.image_size)
        rec = self.records[group.items[0]]
        size = self.size(group)
        boxes = crop_boxes(rec)
        every = np.stack(
            [
                _crop_mask(hull, box, size) if hull and box else np.zeros(size, bool)
                for hull, box in zip(rec.frame_hulls, boxes)
            ]
        )
        init = _crop_mask(rec.init_hull, boxes[rec.init_frame], size)
        return {
            "frame_masks": torch.from_numpy(every[None]),
            "init_masks": torch.from_numpy(init[None]),
            "init_frames": torch.tensor(group.init_frames),
            "frame_valid": torch.tensor([bool(t) for t in group.frame_tokens]),
        }


def video_masks(
    records: Sequence[AgentRecord], group: VideoGroup, image_size: tuple[int, int] | None
) -> dict[str, torch.Tensor]:
    """Whole-frame view: per object its init mask (N, H, W), init frame (N,) and its masks at
    every frame (N, T, H, W); frame_valid (T,)."""
    size = output_size(records[group.items[0]], image_size)
    return {
        "frame_masks": torch.from_numpy(
            np.stack([frame_masks(records[i], size) for i in group.items])
        ),
        "init_masks": torch.from_numpy(
            np.stack([init_mask(records[i], size) for i in group.items])
        ),
        "init_frames": torch.tensor(group.init_frames),
        "frame_valid": torch.tensor([bool(t) for t in group.frame_tokens]),
    }


def group_video(
    records: Sequence[AgentRecord],
    group: VideoGroup,
    image_size: tuple[int, int] | None,
    crop_size: int = 112,
) -> dict[str, torch.Tensor]:
    """A video's masks and frames (T, 3, H, W) RGB in [0, 1], in its view."""
    if group.view == "frame":
        rec = records[group.items[0]]
        frames = load_frames(rec.frame_paths, output_size(rec, image_size))
        return {"frames": torch.from_numpy(frames), **video_masks(records, group, image_size)}
    source = FrameSource(records, image_size, crop_size)
    size = source.size(group)
    frames = np.stack(
        [
            source.load(fid, size) if fid else np.zeros((3, *size), np.float32)
            for fid in source.ids(group)
        ]
    )
    return {"frames": torch.from_numpy(frames), **source.masks(group)}


__all__ = [
    "FrameSource",
    "VIEWS",
    "VideoGroup",
    "crop_boxes",
    "group_video",
    "group_windows",
    "load_crop",
    "single_videos",
    "video_masks",
    "videos",
]
