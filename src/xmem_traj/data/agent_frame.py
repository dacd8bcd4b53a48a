"""Agent frame ↔ global frame, the devkit's convention (PredictHelper, in_agent_frame=True):
origin at the agent's box centre, the agent's heading rotated onto +y."""

from __future__ import annotations

import torch


def quaternion_yaw(rotation: torch.Tensor) -> torch.Tensor:
    """(…, 4) w, x, y, z → yaw (…), as nuscenes.eval.common.utils.quaternion_yaw."""
    w, x, y, z = rotation.unbind(-1)
    return torch.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def _rotation(angle: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


def local_to_global(
    coords: torch.Tensor, translation: torch.Tensor, rotation: torch.Tensor
) -> torch.Tensor:
    """coords (B, …, 2) in the agent frame, translation (B, ≥2), rotation (B, 4) → global."""
    angle = torch.pi / 2 - quaternion_yaw(rotation)  # devkit angle_of_rotation
    rot = _rotation(-angle)  # (B, 2, 2)
    shape = coords.shape
    flat = coords.reshape(shape[0], -1, 2)
    out = flat @ rot.transpose(1, 2) + translation[:, None, :2]
    return out.reshape(shape)


def global_to_local(
    coords: torch.Tensor, translation: torch.Tensor, rotation: torch.Tensor
) -> torch.Tensor:
    angle = torch.pi / 2 - quaternion_yaw(rotation)
    rot = _rotation(angle)
    shape = coords.shape
    flat = coords.reshape(shape[0], -1, 2) - translation[:, None, :2]
    return (flat @ rot.transpose(1, 2)).reshape(shape)
