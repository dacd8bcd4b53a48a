"""Agent-view clips of a split for training XMem's segmentation: each target's agent-centric
crops from its first masked frame on, with the annotations' projected box hulls as the masks
(the only masks nuScenes has)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .agent_dataset import NuScenesAgentDataset
from .videos import FrameSource, single_videos


class AgentClips:
    """The clips of one split: every target whose window has clip_frames real frames from the
    agent's first masked frame on, as agent-centric crops (crop×crop) with the agent's hull
    masks (the first frame's is the one XMem is given)."""

    def __init__(self, ds: NuScenesAgentDataset, *, clip_frames: int, crop_size: int):
        self.records, self.clip_frames, self.crop_size = ds.records, clip_frames, crop_size
        self.split = ds.split
        self.source = FrameSource(ds.records, None, crop_size)
        self.items = [
            i
            for i, r in enumerate(ds.records)
            if r.init_frame + clip_frames <= len(r.frame_tokens)
            and all(r.frame_tokens[r.init_frame : r.init_frame + clip_frames])
        ]

    def __len__(self) -> int:
        return len(self.items)

    def spread(self, count: int) -> list[int]:
        """`count` clips spread evenly over the split (its scenes and agents), in order."""
        if count <= 0 or not self.items:
            return []
        return np.unique(
            np.linspace(0, len(self.items) - 1, min(count, len(self.items))).round().astype(int)
        ).tolist()

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


class ConcatClips:
    """Several splits' clips (e.g. the agents' and their context objects') as one: index i
    runs over the first's clips, then the second's, …"""

    def __init__(self, parts: Sequence[AgentClips]):
        self.parts = [p for p in parts if len(p)]
        self.split = ", ".join(p.split for p in parts)
        self.starts = np.cumsum([0] + [len(p) for p in self.parts])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def load(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """As AgentClips.load, in the order asked."""
        loaded = []
        for k in indices:
            part = int(np.searchsorted(self.starts, k, side="right")) - 1
            loaded.append(self.parts[part].load([k - int(self.starts[part])]))
        return torch.cat([f for f, _ in loaded]), torch.cat([m for _, m in loaded])


__all__ = ["AgentClips", "ConcatClips"]
