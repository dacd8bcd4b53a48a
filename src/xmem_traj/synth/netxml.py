"""A SUMO network (.net.xml, as netconvert writes it) read into plain arrays: lanes with their
shapes, edges, junctions with their outlines, connections (which lane leads where, through which
junction-internal lane, under which signal link) and the signal programs.

Coordinates are the network's, which the city builder keeps equal to the map's global metres
(x east, y north; netconvert --offset.disable-normalization). SUMO headings are navigational
(0 = north, clockwise); everything here is in radians counter-clockwise from +x.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def _shape(text: str) -> np.ndarray:
    """SUMO's "x,y x,y ..." → (n, 2) float array."""
    return np.array([[float(v) for v in p.split(",")[:2]] for p in text.split()], float)


@dataclass
class Lane:
    """One lane. kind: road (a vehicle lane of a normal edge), sidewalk, internal (a path
    through a junction), crossing or walkingarea (pedestrian areas of a junction)."""

    id: str
    edge: str
    index: int
    kind: str
    width: float
    speed: float  # m/s
    length: float  # m, as SUMO measures it
    shape: np.ndarray  # (n, 2) centreline, in the direction of travel
    outline: np.ndarray | None = None  # crossings: their polygon

    def __post_init__(self):
        d = np.diff(self.shape, axis=0)
        self._seg = np.hypot(d[:, 0], d[:, 1])
        self._cum = np.concatenate([[0.0], np.cumsum(self._seg)])
        self._heading = np.arctan2(d[:, 1], d[:, 0]) if len(d) else np.zeros(1)

    @property
    def geometric_length(self) -> float:
        return float(self._cum[-1])

    def pose(self, pos: float) -> tuple[float, float, float]:
        """The centreline point and heading at `pos` metres along the lane (SUMO's lane
        position, rescaled to the shape's own length) → x, y, heading (rad)."""
        s = float(
            np.clip(
                pos * self.geometric_length / max(self.length, 1e-9), 0.0, self.geometric_length
            )
        )
        k = int(np.clip(np.searchsorted(self._cum, s, side="right") - 1, 0, len(self._seg) - 1))
        u = (s - self._cum[k]) / max(self._seg[k], 1e-9)
        x, y = self.shape[k] + u * (self.shape[k + 1] - self.shape[k])
        return float(x), float(y), float(self._heading[k])

    def heading_at(self, pos: float) -> float:
        return self.pose(pos)[2]


@dataclass
class Edge:
    id: str
    function: str  # "" (normal), internal, crossing, walkingarea
    from_node: str = ""
    to_node: str = ""
    lanes: list[str] = field(default_factory=list)


@dataclass
class Junction:
    id: str
    type: str  # traffic_light, priority, allway_stop, dead_end, internal...
    x: float
    y: float
    shape: np.ndarray  # (n, 2) outline
    inc_lanes: list[str]


@dataclass(frozen=True)
class Connection:
    """A link from one lane to another: straight across the junction (via its internal lane)
    or between internal lanes. dir: s, l, r, t, L, R (SUMO's); state: the right of way
    (M major, m minor, s stop sign, w all-way stop, o/O controlled by a signal)."""

    from_lane: str
    to_lane: str
    via: str
    dir: str
    state: str
    tl: str
    link_index: int


@dataclass
class Program:
    """A fixed-time signal program: phases (duration s, state string with one character per
    link index), offset (s)."""

    tls: str
    offset: float
    phases: list[tuple[float, str]]

    @property
    def cycle(self) -> float:
        return float(sum(d for d, _ in self.phases))

    def state_at(self, t: float) -> str:
        """The state string at simulation time t (SUMO runs fixed-time programs from the
        phase that `offset` selects)."""
        u = (t - self.offset) % self.cycle
        for duration, state in self.phases:
            if u < duration:
                return state
            u -= duration
        return self.phases[-1][1]


@dataclass
class RoadNet:
    lanes: dict[str, Lane]
    edges: dict[str, Edge]
    junctions: dict[str, Junction]
    connections: list[Connection]
    programs: dict[str, Program]

    def road_lanes(self, edge: str | None = None) -> list[Lane]:
        """The vehicle lanes of the streets (of one edge: right to left)."""
        if edge is None:
            return [lane for lane in self.lanes.values() if lane.kind == "road"]
        lanes = [self.lanes[i] for i in self.edges[edge].lanes if self.lanes[i].kind == "road"]
        return sorted(lanes, key=lambda ln: ln.index)

    def outgoing(self, lane_id: str) -> list[Connection]:
        return self._by_from().get(lane_id, [])

    def _by_from(self) -> dict[str, list[Connection]]:
        if not hasattr(self, "_from_index"):
            index: dict[str, list[Connection]] = {}
            for c in self.connections:
                index.setdefault(c.from_lane, []).append(c)
            self._from_index = index
        return self._from_index


def _lane_kind(function: str, allow: str) -> str:
    if function in ("crossing", "walkingarea", "internal"):
        return function
    return "sidewalk" if allow == "pedestrian" else "road"


def read_net(path: str | Path) -> RoadNet:
    """Parse a .net.xml into a RoadNet."""
    root = ET.parse(path).getroot()
    lanes, edges, junctions, programs = {}, {}, {}, {}
    connections = []
    for e in root.iter("edge"):
        function = e.get("function", "")
        edge = Edge(e.get("id"), function, e.get("from", ""), e.get("to", ""))
        for ln in e.iter("lane"):
            outline = ln.get("outlineShape")
            lane = Lane(
                ln.get("id"),
                edge.id,
                int(ln.get("index")),
                _lane_kind(function, ln.get("allow", "")),
                float(ln.get("width", 3.2)),
                float(ln.get("speed")),
                float(ln.get("length")),
                _shape(ln.get("shape")),
                _shape(outline) if outline else None,
            )
            lanes[lane.id] = lane
            edge.lanes.append(lane.id)
        edges[edge.id] = edge
    for j in root.iter("junction"):
        shape = j.get("shape")
        junctions[j.get("id")] = Junction(
            j.get("id"),
            j.get("type"),
            float(j.get("x")),
            float(j.get("y")),
            _shape(shape) if shape else np.zeros((0, 2)),
            j.get("incLanes", "").split(),
        )
    for c in root.iter("connection"):
        from_lane = f"{c.get('from')}_{c.get('fromLane')}"
        to_lane = f"{c.get('to')}_{c.get('toLane')}"
        connections.append(
            Connection(
                from_lane,
                to_lane,
                c.get("via", ""),
                c.get("dir", ""),
                c.get("state", ""),
                c.get("tl", ""),
                int(c.get("linkIndex", -1)),
            )
        )
    for t in root.iter("tlLogic"):
        programs[t.get("id")] = Program(
            t.get("id"),
            float(t.get("offset", 0)),
            [(float(p.get("duration")), p.get("state")) for p in t.iter("phase")],
        )
    return RoadNet(lanes, edges, junctions, connections, programs)


__all__ = ["Connection", "Edge", "Junction", "Lane", "Program", "RoadNet", "read_net"]
