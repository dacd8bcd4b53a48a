"""The objects that decide a target's next seconds besides itself: the vehicle it follows (its
leader) and the signal head that controls its approach. Both are found from what is known at
the target time — the annotations of the target sample (PredictHelper) and the map expansion's
`traffic_light` records (NuScenesMap) — and seen in the target's own camera window.

Each object becomes a record like the target's (data/records.py: the same camera, window
frames and tracks; the object's own hulls, first frame in view and instance token), so that
XMem's agent view crops around it as around the agent (data/videos.py). A target whose leader
or signal head is absent, or never in view of its window, has none of that kind.

The rules, in the devkit's agent frame (heading along +y, x to the right), on the map expansion's
lanes (NuScenesMap: lane and lane_connector polygons, their connectivity):
- leader: the nearest annotated vehicle ahead (0 < y ≤ LEADER_AHEAD_M) standing on the
  agent's lane or one it leads to (LANE_DEPTH lanes on), not heading across it (within
  TURN_TOL of the agent's heading: a leader may be turning off); where the agent stands on no
  lane, within half a lane (LANE_HALF_M) of its straight path, heading within HEADING_TOL;
- signal head: the nearest stop line of type TRAFFIC_LIGHT ahead (0 < y ≤ SIGNAL_AHEAD_M)
  across the agent's path (its centre within STOP_LINE_SIDE_M), and of the traffic_lights it
  names, the one nearest the agent's path — seen as a head-sized box (HEAD_BOX_WLH) at its
  pose, at HEAD_HEIGHT_M where the pose has no height.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Callable, Sequence

import numpy as np
from nuscenes.prediction.helper import convert_global_coords_to_local
from nuscenes.utils.data_classes import Box
from pyquaternion import Quaternion
from shapely.geometry import Point
from shapely.strtree import STRtree

from ..config import CONTEXT_KINDS
from .agent_dataset import NuScenesAgentDataset
from .agent_index import AgentIndexer
from .records import AgentRecord

log = logging.getLogger(__name__)

LEADER_AHEAD_M = 60.0
LANE_HALF_M = 1.75  # half of a 3.5 m lane
HEADING_TOL = np.pi / 4
TURN_TOL = np.pi / 2
LANE_DEPTH = 2
SIGNAL_AHEAD_M = 80.0
STOP_LINE_SIDE_M = 2.5
HEAD_BOX_WLH = (0.35, 0.3, 1.0)  # a three-lamp head: width, depth, height (m)
HEAD_HEIGHT_M = 5.2  # centre over the road where a pose has none (MUTCD: 15–19 ft clearance)
RULES_VERSION = 1  # of the rules above: part of the feature cache's key (object_dataset)


def _wrap(angle: np.ndarray | float) -> np.ndarray | float:
    return (angle + np.pi) % (2 * np.pi) - np.pi


def _yaw(rotation: Sequence[float]) -> float:
    w, x, y, z = rotation
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def ahead_in_corridor(
    xy: np.ndarray, rec: AgentRecord, ahead_m: float, side_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Global points (n, 2) → (agent-frame points (n, 2), mask of those ahead within the
    corridor)."""
    if not len(xy):
        return np.zeros((0, 2)), np.zeros(0, bool)
    local = convert_global_coords_to_local(np.asarray(xy, float), rec.translation, rec.rotation)
    inside = (local[:, 1] > 0) & (local[:, 1] <= ahead_m) & (np.abs(local[:, 0]) <= side_m)
    return local, inside


class LaneMap:
    """One location's lanes and signalised stop lines, read through NuScenesMap, with a
    spatial index over the lane polygons (the devkit's get_closest_lane takes ~0.1 s a
    query)."""

    def __init__(self, nusc_map):
        self.map = nusc_map
        lanes = list(nusc_map.lane) + list(nusc_map.lane_connector)
        self.tokens = [r["token"] for r in lanes]
        self.tree = STRtree([nusc_map.extract_polygon(r["polygon_token"]) for r in lanes])
        self.stop_lines = [
            (s, nusc_map.extract_polygon(s["polygon_token"]).centroid)
            for s in nusc_map.stop_line
            if s["stop_line_type"] == "TRAFFIC_LIGHT" and s["traffic_light_tokens"]
        ]

    def lanes_at(self, xy: Sequence[float]) -> set[str]:
        return {self.tokens[i] for i in self.tree.query(Point(xy[:2]), predicate="intersects")}

    def path(self, xy: Sequence[float]) -> set[str]:
        """The lanes under xy and those they lead to, LANE_DEPTH lanes on."""
        out = frontier = self.lanes_at(xy)
        for _ in range(LANE_DEPTH):
            frontier = {n for t in frontier for n in self.map.get_outgoing_lane_ids(t)} - out
            out = out | frontier
        return out


def leader_token(indexer: AgentIndexer, rec: AgentRecord, lanes: LaneMap | None) -> str | None:
    """The instance token of the target's leader at the target sample, or None."""
    anns = [
        a
        for a in indexer.helper.get_annotations_for_sample(rec.sample_token)
        if a["instance_token"] != rec.instance_token and a["category_name"].startswith("vehicle.")
    ]
    if not anns:
        return None
    xy = np.array([a["translation"][:2] for a in anns])
    local, ahead = ahead_in_corridor(xy, rec, LEADER_AHEAD_M, np.inf)
    heading = np.array([_wrap(_yaw(a["rotation"]) - rec.yaw) for a in anns])
    path = lanes.path(rec.translation) if lanes is not None else set()
    if path:
        ahead &= np.abs(heading) <= TURN_TOL
        on_path = np.array(
            [bool(ahead[i] and lanes.lanes_at(xy[i]) & path) for i in range(len(anns))]
        )
    else:
        on_path = ahead & (np.abs(heading) <= HEADING_TOL) & (np.abs(local[:, 0]) <= LANE_HALF_M)
    if not on_path.any():
        return None
    return anns[np.flatnonzero(on_path)[np.argmin(local[on_path, 1])]]["instance_token"]


def controlling_light(lanes: LaneMap, rec: AgentRecord) -> dict | None:
    """The traffic_light record that controls the target's approach (see the module's
    docstring), or None."""
    if not lanes.stop_lines:
        return None
    xy = np.array([[c.x, c.y] for _, c in lanes.stop_lines])
    local, inside = ahead_in_corridor(xy, rec, SIGNAL_AHEAD_M, STOP_LINE_SIDE_M)
    if not inside.any():
        return None
    stop = lanes.stop_lines[np.flatnonzero(inside)[np.argmin(local[inside, 1])]][0]
    lights = [lanes.map.get("traffic_light", t) for t in stop["traffic_light_tokens"]]
    pose_xy = np.array([[lt["pose"]["tx"], lt["pose"]["ty"]] for lt in lights])
    lateral = np.abs(ahead_in_corridor(pose_xy, rec, np.inf, np.inf)[0][:, 0])
    return lights[int(np.argmin(lateral))]


def head_box(light: dict) -> Box:
    """A head-sized global box at a traffic_light's pose, facing along its yaw."""
    p = light["pose"]
    z = p["tz"] if p.get("tz", 0.0) > 0.5 else HEAD_HEIGHT_M
    w, depth, h = HEAD_BOX_WLH
    return Box([p["tx"], p["ty"], z], [w, depth, h], Quaternion(axis=[0, 0, 1], angle=p["rz"]))


class ContextFinder:
    """A target's context objects as records (see the module's docstring), through one loaded
    NuScenes (its indexer) and the lanes and signals (LaneMap) of each location."""

    def __init__(self, indexer: AgentIndexer, lanes: dict[str, LaneMap]):
        self.indexer, self.lanes = indexer, lanes

    def objects(self, rec: AgentRecord, location: str) -> dict[str, AgentRecord | None]:
        """kind → the object's record (None: no such object, or never in view)."""
        lanes = self.lanes.get(location)
        leader = leader_token(self.indexer, rec, lanes)
        light = controlling_light(lanes, rec) if lanes is not None else None
        head = head_box(light) if light is not None else None
        return {
            "leader": self._record(
                rec,
                leader,
                lambda sd: self.indexer.agent_box_in(leader, sd, own_or_interpolated=True),
            ),
            "signal": self._record(rec, light and f"light:{light['token']}", lambda sd: head),
        }

    def _record(
        self, rec: AgentRecord, token: str | None, box_at: Callable[[dict], Box | None]
    ) -> AgentRecord | None:
        """The target's record with the hulls of the object's box (box_at(sd): its global box
        at a window frame); None without a token or a box in view."""
        if token is None:
            return None
        hulls = self.indexer.frame_hulls(rec.frame_tokens, box_at)
        seen = [i for i, h in enumerate(hulls) if h]
        if not seen:
            return None
        return replace(
            rec,
            instance_token=token,
            init_frame=seen[0],
            init_hull=hulls[seen[0]],
            frame_hulls=hulls,
        )


def object_dataset(
    ds: NuScenesAgentDataset, kind: str, records: list[AgentRecord]
) -> NuScenesAgentDataset:
    """Objects of one kind as a dataset of their own: ds's targets with these records, as a
    split named after the kind and the rules' version (what feature caches key on)."""
    targets = replace(ds.targets, records=records, split=f"{ds.split}+{kind}@rules{RULES_VERSION}")
    return NuScenesAgentDataset(targets, image_size=ds.image_size)


def find_context(
    nusc, dataroot: str, records: Sequence[AgentRecord], kinds: Sequence[str]
) -> dict[str, list[AgentRecord | None]]:
    """kind → per record its object's record (None: none, or never in view), through one
    loaded NuScenes and the map expansion of each location (without one: no signal heads
    there, leaders on the straight path; a warning says so)."""
    from nuscenes.map_expansion.map_api import NuScenesMap

    from .maps import has_map_expansion, record_locations

    locations = record_locations(nusc, records)
    lanes = {
        loc: LaneMap(NuScenesMap(dataroot=str(dataroot), map_name=loc))
        for loc in sorted(set(locations))
        if has_map_expansion(dataroot, [loc])
    }
    missing = sorted(set(locations) - set(lanes))
    if missing:
        log.warning(
            "no map expansion for %s: no signal heads there, leaders on the straight path",
            ", ".join(missing),
        )
    finder = ContextFinder(AgentIndexer(nusc), lanes)
    found = [finder.objects(r, loc) for r, loc in zip(records, locations)]
    return {kind: [objects[kind] for objects in found] for kind in kinds}


__all__ = [
    "CONTEXT_KINDS",
    "ContextFinder",
    "LaneMap",
    "controlling_light",
    "find_context",
    "head_box",
    "leader_token",
    "object_dataset",
]
