"""The nuScenes agent-sequence loader (the seed sketch's "lightweight nuScenes sequence loader").

An item is the seed's dict — frames, traj, last_pos, init_masks, init_labels, meta — for one
target agent (instance, sample). `groups()` gathers targets that share a scene, time window and
camera into one multi-object video, so XMem runs once for all of them.
"""
from __future__ import annotations

import logging
import os
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from nuscenes.nuscenes import NuScenes
from PIL import Image
from shapely.geometry import Polygon
from torch.utils.data import Dataset

from ..projection import rasterize
from .agent_index import AgentIndexer, AgentRecord, DatasetError, candidate_targets, check_dataroot

log = logging.getLogger(__name__)

DEFAULT_IMAGE_SIZE = (144, 256)


def load_frame(path: str, size: tuple[int, int] | None) -> np.ndarray:
    """JPEG → float32 RGB in [0, 1], (3, H, W), resized to size = (H, W) if given."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if size is not None and im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise DatasetError(f"missing image {path}") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise DatasetError(f"cannot read image {path}: {err}") from None
    return arr.transpose(2, 0, 1)


@dataclass(frozen=True)
class VideoGroup:
    """Targets that share one camera window: one XMem video with len(items) objects.
    Object i (label i+1) enters at frame init_frames[i]."""

    camera: str
    frame_tokens: tuple[str, ...]
    items: tuple[int, ...]
    init_frames: tuple[int, ...]


class NuScenesAgentDataset(Dataset):
    """One item per target agent (instance, sample) of a nuScenes split.

    Args:
        dataroot, version: the nuScenes folder and table version (v1.0-mini, v1.0-trainval).
        split: mini_train/mini_val/train/train_val/val (challenge) or any devkit split name.
        challenge: use maps/prediction/prediction_scenes.json (vehicles with a full 6 s future);
            None = when the file exists.
        frames: "keyframes" (2 Hz, history_s 2 s → 5 frames) or "sweeps" (every camera frame).
        categories: category name prefixes to keep (None = all).
        min_visibility: lowest visibility token (1..4) kept; min_area: lowest clipped projected
            box area as a fraction of the image at the target sample.
        require_full_future: drop targets whose future is shorter than future_s.
        image_size: (H, W) of the returned frames and masks; None keeps the source size.
        nusc: an already loaded NuScenes to reuse.
    """

    def __init__(self, dataroot: str | os.PathLike, version: str, split: str, *,
                 challenge: bool | None = None, frames: str = "keyframes",
                 history_s: float = 2.0, future_s: float = 6.0,
                 categories: Sequence[str] | None = None, min_visibility: int = 0,
                 min_area: float = 0.0, require_full_future: bool = True,
                 image_size: tuple[int, int] | None = DEFAULT_IMAGE_SIZE,
                 nusc: NuScenes | None = None, verbose: bool = False):
        root = check_dataroot(dataroot, version)
        self.dataroot, self.version, self.split = str(root), version, split
        self.image_size = tuple(image_size) if image_size is not None else None
        self.frames_kind, self.history_s, self.future_s = frames, history_s, future_s
        self.nusc = nusc or NuScenes(version=version, dataroot=str(root), verbose=verbose)
        pairs, skipped, self.challenge = candidate_targets(
            self.nusc, root, split, challenge, tuple(categories) if categories else None)
        indexer = AgentIndexer(self.nusc, frames=frames, history_s=history_s, future_s=future_s)
        self.window_len = indexer.window_len
        self.records: list[AgentRecord] = []
        for inst, samp in pairs:
            try:
                self.nusc.get("instance", inst)
                self.nusc.get("sample", samp)
            except KeyError:
                skipped["token not in this version's tables"] += 1
                continue
            rec = indexer.record(inst, samp, require_full_future=require_full_future,
                                 min_area=min_area, min_visibility=min_visibility)
            if rec is not None:
                self.records.append(rec)
        self.skipped: Counter = skipped + indexer.skipped
        if self.skipped:
            log.info("%s/%s: kept %d targets, skipped %s", version, split, len(self.records),
                     dict(self.skipped))
        if not self.records:
            raise DatasetError(f"no targets in {version}/{split} after filtering "
                               f"(skipped: {dict(self.skipped) or 'none'})")
        self.helper = indexer.helper

    def __getstate__(self):  # workers need paths and records, not the devkit tables
        state = self.__dict__.copy()
        state["nusc"] = state["helper"] = None
        return state

    def __len__(self) -> int:
        return len(self.records)

    def _size(self, rec: AgentRecord) -> tuple[int, int]:
        return self.image_size or (rec.source_size[1], rec.source_size[0])

    def init_mask(self, rec: AgentRecord) -> np.ndarray:
        """The agent's hull at its init frame, filled at the output size: bool (H, W)."""
        return self._fill(rec, rec.init_hull)

    def frame_masks(self, rec: AgentRecord) -> np.ndarray:
        """The agent's devkit-recipe hull at every window frame: bool (T, H, W), empty where it
        is not in view (what `masks="every"` hands XMem)."""
        h, w = self._size(rec)
        return np.stack([self._fill(rec, hull) if hull else np.zeros((h, w), bool)
                         for hull in rec.frame_hulls])

    def _fill(self, rec: AgentRecord, hull) -> np.ndarray:
        h, w = self._size(rec)
        return rasterize(Polygon(hull), rec.source_size[0], rec.source_size[1], w, h)

    def load_frames(self, paths: Sequence[str], size: tuple[int, int]) -> np.ndarray:
        """(T, 3, H, W) float32; padding frames ("") are zeros."""
        out = np.zeros((len(paths), 3, *size), np.float32)
        for t, p in enumerate(paths):
            if p:
                out[t] = load_frame(p, size)
        return out

    def tracks(self, index: int) -> dict[str, np.ndarray]:
        """The target's tracks at 2 Hz, padded: past (P, 2) oldest first, right-aligned, with
        past_valid (P,); traj (F, 2) left-aligned, with future_valid (F,). Agent frame."""
        rec = self.records[index]
        n_past, n_future = int(round(self.history_s * 2)), int(round(self.future_s * 2))
        past, fut = rec.past[-n_past:] if len(rec.past) else rec.past, rec.future[:n_future]
        out = {"past": np.zeros((n_past, 2), np.float32), "past_valid": np.zeros(n_past, bool),
               "traj": np.zeros((n_future, 2), np.float32), "future_valid": np.zeros(n_future, bool)}
        if len(past):
            out["past"][n_past - len(past):] = past
            out["past_valid"][n_past - len(past):] = True
        out["traj"][:len(fut)] = fut
        out["future_valid"][:len(fut)] = True
        return out

    def __getitem__(self, index: int) -> dict[str, Any]:
        rec = self.records[index]
        size = self._size(rec)
        tracks = self.tracks(index)
        traj, future_valid = tracks["traj"], tracks["future_valid"]
        past, past_valid = tracks["past"], tracks["past_valid"]
        frame_valid = np.array([bool(t) for t in rec.frame_tokens])
        meta = {
            "instance_token": rec.instance_token, "sample_token": rec.sample_token,
            "scene_name": rec.scene_name, "camera": rec.camera, "category": rec.category,
            "frame_tokens": list(rec.frame_tokens), "frame_timestamps": list(rec.frame_timestamps),
            "frame_valid": frame_valid, "init_frame": rec.init_frame,
            "past": past, "past_valid": past_valid, "future_valid": future_valid,
            "translation": np.asarray(rec.translation, np.float32),
            "rotation": np.asarray(rec.rotation, np.float32),
            "visibility": rec.visibility, "box_area": rec.box_area,
        }
        return {
            "frames": torch.from_numpy(self.load_frames(rec.frame_paths, size)),
            "traj": torch.from_numpy(traj),
            "last_pos": torch.tensor(rec.translation[:2], dtype=torch.float32),
            "init_masks": torch.from_numpy(self.init_mask(rec)[None]),
            "init_labels": torch.tensor([1]),
            "meta": meta,
        }

    # --------------------------------------------------------------------------- grouping
    def groups(self, indices: Sequence[int] | None = None) -> list[VideoGroup]:
        """Targets sharing (camera, window) become one multi-object video, objects ordered by
        the frame they enter (so labels reach memory in increasing order)."""
        buckets: dict[tuple, list[int]] = defaultdict(list)
        for i in (range(len(self)) if indices is None else indices):
            rec = self.records[i]
            buckets[(rec.camera, tuple(rec.frame_tokens))].append(i)
        out = []
        for (camera, tokens), items in buckets.items():
            items = sorted(items, key=lambda i: (self.records[i].init_frame, i))
            out.append(VideoGroup(camera, tokens, tuple(items),
                                  tuple(self.records[i].init_frame for i in items)))
        return out

    def group_video(self, group: VideoGroup) -> dict[str, torch.Tensor]:
        """frames (T, 3, H, W); per object its init mask (N, H, W), init frame (N,) and its
        masks at every frame (N, T, H, W)."""
        rec = self.records[group.items[0]]
        size = self._size(rec)
        return {
            "frames": torch.from_numpy(self.load_frames(rec.frame_paths, size)),
            "frame_masks": torch.from_numpy(np.stack([self.frame_masks(self.records[i])
                                                      for i in group.items])),
            "init_masks": torch.from_numpy(np.stack([self.init_mask(self.records[i])
                                                     for i in group.items])),
            "init_frames": torch.tensor(group.init_frames),
            "frame_valid": torch.tensor([bool(t) for t in group.frame_tokens]),
        }


def collate_agents(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors; meta becomes a dict of lists (arrays stacked as tensors)."""
    out: dict[str, Any] = {k: torch.stack([it[k] for it in items]) for k in
                           ("frames", "traj", "last_pos", "init_masks", "init_labels")}
    meta: dict[str, Any] = {}
    for key in items[0]["meta"]:
        values = [it["meta"][key] for it in items]
        meta[key] = torch.from_numpy(np.stack(values)) if isinstance(values[0], np.ndarray) else values
    out["meta"] = meta
    return out
