"""An agent target as the loader indexed it (data/agent_index.py builds them through the
devkit): where it is seen (camera, window frames, masks), its past and future tracks, and its
box at the target sample."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KEYFRAME_HZ = 2
CAMERA_HZ = 12


@dataclass
class AgentRecord:
    instance_token: str
    sample_token: str
    sample_timestamp: int  # µs
    scene_name: str
    category: str
    camera: str
    frame_tokens: list[str]  # oldest → newest, "" for padding
    frame_paths: list[str]  # absolute paths, "" for padding
    frame_timestamps: list[int]  # µs, 0 for padding
    init_frame: int  # first window frame in which the agent is in view
    init_hull: list[tuple[float, float]]  # its clipped hull there, pixels of the source image
    frame_hulls: list[list[tuple[float, float]]]  # hull at every window frame ([] if not in view)
    source_size: tuple[int, int]  # (width, height) of that camera's images
    past: np.ndarray  # (P, 2) agent frame, oldest first (PredictHelper)
    future: np.ndarray  # (F, 2) agent frame (PredictHelper)
    translation: list[float]  # agent box at the target sample (global)
    rotation: list[float]
    box_area: float  # clipped projected area / image area at the target
    visibility: str

    @property
    def yaw(self) -> float:
        """Heading of the agent's box at the target (rad, counter-clockwise from +x), as the
        devkit's quaternion_yaw reads it."""
        w, x, y, z = self.rotation
        return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))

    def padded_tracks(self, past_steps: int, future_steps: int) -> dict[str, np.ndarray]:
        """The tracks at key-frame rate, padded: past (P, 2) oldest first, right-aligned, with
        past_valid (P,); traj (F, 2) left-aligned, with future_valid (F,). Agent frame."""
        past = self.past[-past_steps:] if len(self.past) else self.past
        fut = self.future[:future_steps]
        out = {
            "past": np.zeros((past_steps, 2), np.float32),
            "past_valid": np.zeros(past_steps, bool),
            "traj": np.zeros((future_steps, 2), np.float32),
            "future_valid": np.zeros(future_steps, bool),
        }
        if len(past):
            out["past"][past_steps - len(past) :] = past
            out["past_valid"][past_steps - len(past) :] = True
        out["traj"][: len(fut)] = fut
        out["future_valid"][: len(fut)] = True
        return out


def steps(seconds: float) -> int:
    """Key-frame steps in `seconds` (2 Hz): 2 s of history → 4, a 6 s horizon → 12."""
    return int(round(seconds * KEYFRAME_HZ))


__all__ = ["AgentRecord", "CAMERA_HZ", "KEYFRAME_HZ", "steps"]
