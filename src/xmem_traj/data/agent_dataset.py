"""The nuScenes agent-sequence Dataset (the seed sketch's "lightweight nuScenes sequence loader").

An item is the seed's dict — frames, traj, last_pos, init_masks, init_labels, meta — for one
target agent (instance, sample). Records come from `index_targets` (the devkit); the Dataset
itself only reads image files.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Sequence

import numpy as np
import torch
from nuscenes.nuscenes import NuScenes
from torch.utils.data import Dataset

from ..config import DataConfig
from .agent_index import AgentTargets, index_targets
from .frames import image_files_sha256, init_mask, load_frames, output_size


class NuScenesAgentDataset(Dataset):
    """One item per target of `targets`; frames and masks at image_size (H, W), or at each
    camera's source size with None."""

    def __init__(self, targets: AgentTargets, *, image_size: tuple[int, int] | None):
        self.targets = targets
        self.records = targets.records
        self.image_size = tuple(image_size) if image_size is not None else None

    @classmethod
    def from_nuscenes(
        cls,
        dataroot: str | os.PathLike,
        version: str,
        split: str,
        *,
        image_size: tuple[int, int] | None,
        frames: str = "keyframes",
        history_s: float = 2.0,
        future_s: float = 6.0,
        nusc: NuScenes | None = None,
        **filters,
    ) -> "NuScenesAgentDataset":
        """Index a split through the devkit (see index_targets for `filters`); the challenge's
        2 s of history and 6 s horizon unless told otherwise."""
        return cls(
            index_targets(
                dataroot,
                version,
                split,
                frames=frames,
                history_s=history_s,
                future_s=future_s,
                nusc=nusc,
                **filters,
            ),
            image_size=image_size,
        )

    @classmethod
    def from_config(
        cls,
        data: DataConfig,
        dataroot: str,
        version: str,
        split: str,
        *,
        image_size: tuple[int, int] | None,
        nusc: NuScenes | None = None,
    ) -> "NuScenesAgentDataset":
        """The split's targets as a run with this data group sees them."""
        return cls(
            index_targets(
                dataroot,
                version,
                split,
                frames=data.frames,
                history_s=data.history_s,
                future_s=data.future_s,
                challenge=data.challenge,
                categories=data.category_list,
                nusc=nusc,
            ),
            image_size=image_size,
        )

    @property
    def split(self) -> str:
        return self.targets.split

    @property
    def window_len(self) -> int:
        return self.targets.window_len

    def __len__(self) -> int:
        return len(self.records)

    def fingerprint(self) -> dict:
        """What identifies these targets' inputs in a cache key: the dataroot, version, split,
        frames, image size and every target with its camera window."""
        h = hashlib.sha256()
        for r in self.records:
            h.update(
                "|".join(
                    [r.instance_token, r.sample_token, r.camera, str(r.init_frame), *r.frame_tokens]
                ).encode()
            )
        t = self.targets
        return {
            "dataroot": os.path.abspath(t.dataroot),
            "version": t.version,
            "split": t.split,
            "frames": t.frames,
            "image_size": list(self.image_size or []),
            "history_s": t.history_s,
            "targets": len(self.records),
            "targets_sha256": h.hexdigest(),
            "images_sha256": image_files_sha256(self.records),
        }

    def tracks(self, index: int) -> dict[str, np.ndarray]:
        """Past and future of a target, padded to the split's horizons
        (AgentRecord.padded_tracks)."""
        return self.records[index].padded_tracks(self.targets.past_steps, self.targets.future_steps)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rec = self.records[index]
        size = output_size(rec, self.image_size)
        tracks = self.tracks(index)
        meta = {
            "instance_token": rec.instance_token,
            "sample_token": rec.sample_token,
            "scene_name": rec.scene_name,
            "camera": rec.camera,
            "category": rec.category,
            "frame_tokens": list(rec.frame_tokens),
            "frame_timestamps": list(rec.frame_timestamps),
            "frame_valid": np.array([bool(t) for t in rec.frame_tokens]),
            "init_frame": rec.init_frame,
            "past": tracks["past"],
            "past_valid": tracks["past_valid"],
            "future_valid": tracks["future_valid"],
            "translation": np.asarray(rec.translation, np.float32),
            "rotation": np.asarray(rec.rotation, np.float32),
            "visibility": rec.visibility,
            "box_area": rec.box_area,
        }
        return {
            "frames": torch.from_numpy(load_frames(rec.frame_paths, size)),
            "traj": torch.from_numpy(tracks["traj"]),
            "last_pos": torch.tensor(rec.translation[:2], dtype=torch.float32),
            "init_masks": torch.from_numpy(init_mask(rec, size)[None]),
            "init_labels": torch.tensor([1]),
            "meta": meta,
        }


def collate_agents(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors; meta becomes a dict of lists (arrays stacked as tensors)."""
    out: dict[str, Any] = {
        k: torch.stack([it[k] for it in items])
        for k in ("frames", "traj", "last_pos", "init_masks", "init_labels")
    }
    meta: dict[str, Any] = {}
    for key in items[0]["meta"]:
        values = [it["meta"][key] for it in items]
        meta[key] = (
            torch.from_numpy(np.stack(values)) if isinstance(values[0], np.ndarray) else values
        )
    out["meta"] = meta
    return out


__all__ = ["NuScenesAgentDataset", "collate_agents"]
