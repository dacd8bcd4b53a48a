"""The side file's rows for one scene (schema: data/world_file.py): per camera frame the agents
and signal heads in view, per annotated agent its true states over time and its manoeuvres with
their causes, in the file's units (µs timestamps, instance tokens, head indices)."""

from __future__ import annotations

import numpy as np
from nuscenes.utils.data_classes import Box
from pyquaternion import Quaternion

from ..data.world_schema import SIGNAL_STATES
from .camgeom import hull_area, world_to_camera
from .heads import STATE_OF, controlling_head
from .scene import Scene
from .traffic import STEP_S
from .vehicles import BRAKE_ON
from .world import Track


def _r(v: float, nd: int = 2):
    return None if v is None or not np.isfinite(v) else round(float(v), nd)


def agent_box(state: dict, size) -> Box:
    """The devkit's Box of an agent in state (x, y, yaw), size (w, l, h); its base on z = 0."""
    w, l, h = size
    return Box(
        [state["x"], state["y"], h / 2], [w, l, h], Quaternion(axis=[0, 0, 1], angle=state["yaw"])
    )


def frame_rows(
    scene: Scene, t: float, ids: np.ndarray, faces: dict, pose: dict, cs: dict, cam
) -> list[list]:
    """Per agent shown in a frame: [track index, lamps..., faces..., unoccluded share]; pose and
    cs: the frame's ego_pose and calibrated_sensor records."""
    counts = np.bincount(
        np.clip(ids.ravel(), 0, len(scene.tracks) + 1), minlength=len(scene.tracks) + 2
    )
    frame = world_to_camera(pose, cs)
    rows = []
    for i, shown in faces.items():
        if counts[i + 1] == 0:
            continue
        st = scene.tracks[i].at(t)
        area = hull_area(st, scene.tracks[i].size, frame, cam.K, cam.width, cam.height)
        share = min(1.0, counts[i + 1] / area) if area > 0 else 0.0
        rows.append(
            [
                i,
                int(st["brake"]),
                int(st["left"]),
                int(st["right"]),
                int(st["left_active"]),
                int(st["right_active"]),
                int(shown["back"]),
                int(shown["front"]),
                int(shown["left"]),
                int(shown["right"]),
                round(share, 3),
            ]
        )
    return rows


def head_rows(
    scene: Scene, t: float, ids: np.ndarray, heads_shown: dict, id_base: int
) -> list[list]:
    """Per signal head in a frame: [head index, state code, lamps face the camera, pixels]."""
    rows = []
    values, counts = np.unique(ids[ids >= id_base], return_counts=True)
    pixels = dict(zip((values - id_base).tolist(), counts.tolist()))
    for k, facing in sorted(heads_shown.items()):
        if pixels.get(k, 0) > 0:
            state = SIGNAL_STATES.index(scene.head_state(scene.heads[k], t))
            rows.append([k, state, int(facing), int(pixels[k])])
    return rows


def _signal(track: Track, k: int, net, heads: dict) -> tuple[int, float | None, int]:
    """(state code, metres to the stop line, head index) of the signal at the vehicle's next
    stop line at step k; (0, None, -1) where its next junction has none."""
    v = track.trace.values
    tls, dist, lane = v["tls"][k], v["tls_dist"][k], net.lanes.get(v["lane"][k])
    if not tls or lane is None or lane.kind != "road" or dist > lane.length - v["lanepos"][k] + 1.0:
        return 0, None, -1
    tid, link = tls.split("#")
    head = heads.get((tid, int(link)))
    colour = STATE_OF.get(v["tls_state"][k], "off")  # the vehicle's own link
    return SIGNAL_STATES.index(colour), dist, head.index if head is not None else -1


def _state_rows(scene: Scene, track: Track, net, heads, tokens: dict[str, str], span):
    """The agent's STATE_FIELDS rows over `span` (scene s) and the time of the first (None
    where there is none: not a simulated vehicle)."""
    by_key = {tr.key: tr for tr in scene.tracks}
    rows, first = [], None
    if track.trace is None or not track.category.startswith("vehicle"):
        return rows, first
    v = track.trace.values
    for k in range(len(track.x)):
        t = track.t0 + k * STEP_S
        if not span[0] - 1e-6 <= t <= span[1] + 1e-6:
            continue
        first = t if first is None else first
        code, dist, head = _signal(track, k, net, heads)
        leader = v["leader"][k]
        lead = by_key.get(leader)
        if lead is not None and lead.alive(t):
            braking = int(lead.brake[lead.index(t)])
        else:
            braking = int(v["leader_accel"][k] < -BRAKE_ON) if leader else None
        rows.append(
            [
                code,
                _r(dist),
                head,
                tokens.get(leader, ""),
                _r(v["gap"][k]),
                _r(v["leader_speed"][k]),
                braking,
                int(track.brake[k]),
                int(track.left[k]),
                int(track.right[k]),
                _r(track.speed[k]),
            ]
        )
    return rows, first


def _cause_ref(m, heads, tokens: dict[str, str]) -> str:
    """A manoeuvre's cause as the side file names it: the leader's instance token or
    "head:<index>" of the signal's head."""
    if m.cause == "leader":
        return tokens.get(m.cause_ref, "")
    if m.cause == "signal" and m.cause_ref:
        tid, link = m.cause_ref.split("#")
        head = heads.get((tid, int(link)))
        return f"head:{head.index}" if head is not None else ""
    return ""


def agent_entry(
    scene: Scene, track: Track, net, tokens: dict[str, str], base_us: int, span: tuple[float, float]
) -> dict:
    """An annotated agent's side-file entry: its true states over `span` (scene s) and its
    manoeuvres; tokens: SUMO id → instance token of the annotated agents."""

    def us(t: float) -> int:
        return int(base_us + round(t * 1e6))

    heads = controlling_head(scene.heads, net)
    rows, first = _state_rows(scene, track, net, heads, tokens, span)
    return {
        "category": track.category,
        "parked": track.parked,
        "key": track.key,
        "states": {
            "t0": us(first if first is not None else span[0]),
            "dt": int(STEP_S * 1e6),
            "rows": rows,
        },
        "manoeuvres": [
            {
                "kind": m.kind,
                "side": m.side,
                "t_motion": us(m.t_motion),
                "t_end": us(m.t_end),
                "cause": m.cause,
                "cause_ref": _cause_ref(m, heads, tokens),
                "cues": [[kind, us(on), us(off)] for kind, on, off in m.cues],
            }
            for m in track.manoeuvres
        ],
        "misleading": [[kind, us(on), us(off)] for kind, on, off in track.misleading],
    }


__all__ = ["agent_box", "agent_entry", "frame_rows", "head_rows"]
