"""Signal heads and stop lines of the city, where a camera (and the map) finds them.

Each signalised approach lane has its own head, hung from a mast arm over the lane's
continuation on the far side of the junction (where the drivers queued at the stop line see
it: MUTCD 2009 §4D.13 prefers far-side heads, one over each lane), facing the approaching
traffic. A head shows its lane's straight-on link (its first link where none goes straight):
SUMO's state letters G/g green, y yellow, r/u/s red, o/O off. Stop lines sit where the lanes
end at a junction they must stop or yield at: at signals, at stop signs (SUMO link state s,
w) and at yield lines (m).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from shapely.geometry import LineString, Polygon

from ..data.world_schema import SIGNAL_STATES
from .netxml import RoadNet

HEAD_HEIGHT = 5.2  # m, centre of the head (MUTCD: 15–19 ft over the roadway)
HEAD_SIZE = (0.35, 0.3, 1.0)  # width, depth, height (m): three 30 cm lamps
POLE_HEIGHT = 6.0
FAR_SIDE_M = 1.5  # beyond the junction's far edge
STATE_OF = {
    "G": "green",
    "g": "green",
    "y": "yellow",
    "Y": "yellow",
    "r": "red",
    "R": "red",
    "u": "red",
    "s": "red",
    "o": "off",
    "O": "off",
}


@dataclass(frozen=True)
class Head:
    """A signal head: what it controls and where it hangs (centre, facing yaw)."""

    index: int
    tls: str
    link: int
    lane: str
    edge: str
    x: float
    y: float
    z: float
    yaw: float

    def state(self, tls_state: str) -> str:
        """The head's colour for its signal's state string ("off" where unknown)."""
        if not tls_state or self.link >= len(tls_state):
            return "off"
        return STATE_OF.get(tls_state[self.link], "off")


@dataclass(frozen=True)
class StopLine:
    lane: str
    edge: str
    kind: str  # TRAFFIC_LIGHT, STOP_SIGN, YIELD (the map's stop_line_type)
    a: tuple[float, float]  # its two ends, across the lane
    b: tuple[float, float]
    heading: float  # direction of travel


def _far_side(net: RoadNet, lane_id: str, junction: str) -> tuple[float, float, float]:
    """Where the lane's heading leaves the junction beyond its end → x, y, heading."""
    lane = net.lanes[lane_id]
    x, y, h = lane.pose(lane.length)
    direction = np.array([np.cos(h), np.sin(h)])
    start = np.array([x, y])
    shape = net.junctions[junction].shape
    reach = 8.0
    if len(shape) >= 3:
        hit = Polygon(shape).buffer(0).intersection(LineString([start, start + direction * 80.0]))
        if not hit.is_empty:
            coords = np.array([c for g in getattr(hit, "geoms", [hit]) for c in g.coords])
            reach = float(((coords - start) @ direction).max())
    end = start + direction * (reach + FAR_SIDE_M)
    return float(end[0]), float(end[1]), float(h)


def signal_heads(net: RoadNet) -> list[Head]:
    """One head per signalised approach lane, in a fixed order."""
    heads = []
    for lane_id in sorted(lid for lid, lane in net.lanes.items() if lane.kind == "road"):
        links = [c for c in net.outgoing(lane_id) if c.tl and c.link_index >= 0]
        if not links:
            continue
        shown = next((c for c in links if c.dir == "s"), links[0])
        junction = net.edges[net.lanes[lane_id].edge].to_node
        x, y, h = _far_side(net, lane_id, junction)
        heads.append(
            Head(
                len(heads),
                shown.tl,
                shown.link_index,
                lane_id,
                net.lanes[lane_id].edge,
                x,
                y,
                HEAD_HEIGHT,
                float(h + np.pi),
            )
        )
    return heads


def controlling_head(heads: list[Head], net: RoadNet) -> dict[tuple[str, int], Head]:
    """(signal, link index) → the head over the lane that link leaves from."""
    by_lane = {h.lane: h for h in heads}
    return {
        (c.tl, c.link_index): by_lane[c.from_lane]
        for c in net.connections
        if c.tl and c.link_index >= 0 and c.from_lane in by_lane
    }


def stop_lines(net: RoadNet) -> list[StopLine]:
    """Stop and yield lines at the end of every lane that has to stop or yield there."""
    out = []
    for lane_id in sorted(lid for lid, lane in net.lanes.items() if lane.kind == "road"):
        states = {c.state for c in net.outgoing(lane_id)}
        tls = any(c.tl for c in net.outgoing(lane_id))
        kind = (
            "TRAFFIC_LIGHT"
            if tls
            else "STOP_SIGN"
            if states & {"s", "w"}
            else "YIELD"
            if states & {"m"}
            else ""
        )
        if not kind:
            continue
        lane = net.lanes[lane_id]
        x, y, h = lane.pose(lane.length)
        nx, ny = -np.sin(h) * lane.width / 2, np.cos(h) * lane.width / 2
        out.append(StopLine(lane_id, lane.edge, kind, (x - nx, y - ny), (x + nx, y + ny), h))
    return out


__all__ = [
    "HEAD_HEIGHT",
    "HEAD_SIZE",
    "Head",
    "POLE_HEIGHT",
    "SIGNAL_STATES",
    "StopLine",
    "controlling_head",
    "signal_heads",
    "stop_lines",
]
