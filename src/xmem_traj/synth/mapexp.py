"""The map expansion of the synthetic world, made from the SUMO network: maps/expansion/
<location>.json as nuscenes-devkit 1.2.0's NuScenesMap loads it (version "1.3", canvas_edge,
every layer), so that NuScenesMap, its lane discretisation, the prediction rasterisers and
OffRoadRate run unmodified.

Layers: lanes (SUMO's street lanes) and lane connectors (its paths through junctions) with
their arcline_path_3 (arcline.py) and connectivity, drivable area (lanes, junction paths and
junction areas, not their corner sidewalks), road segments (a street both ways; a junction,
is_intersection), road blocks (a street one way), pedestrian crossings, walkways (sidewalks
and corner areas), stop lines (at signals, stop signs and yield lines) with their signals,
road and lane dividers, traffic lights (one per signal head, heads.py). Every location's file
is written (load_all_maps opens all four); the others are empty.

Facts from the devkit: `version` is compared as a string; OffRoadRate rasterises drivable_area
at 10 px/m over a canvas whose size is fixed per location (MAP_EXTENTS), its origin at the
south-west corner: the city is built inside it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon
from shapely.ops import unary_union

from .arcline import arcline_paths
from .heads import HEAD_SIZE, signal_heads, stop_lines
from .netxml import Lane, RoadNet

#: Canvas (width, height) in metres per location, as NuScenesMap.get_map_mask hard-codes it.
MAP_EXTENTS = {
    "singapore-onenorth": (1585.6, 2025.0),
    "singapore-hollandvillage": (2808.3, 2922.9),
    "singapore-queenstown": (3228.6, 3687.1),
    "boston-seaport": (2979.5, 2118.1),
}
LOCATION = "boston-seaport"  # every synthetic log drives here
LAYERS = (
    "polygon",
    "line",
    "node",
    "drivable_area",
    "road_segment",
    "road_block",
    "lane",
    "ped_crossing",
    "walkway",
    "stop_line",
    "carpark_area",
    "road_divider",
    "lane_divider",
    "traffic_light",
    "lane_connector",
)
STOP_LINE_DEPTH = 0.4


def _polygons(geometry) -> list[Polygon]:
    """The valid polygons of a geometry, on the millimetre grid the file's nodes are written on
    (so that the devkit's shapely operations accept them)."""
    geometry = shapely.make_valid(shapely.set_precision(geometry, 0.001))
    if isinstance(geometry, Polygon):
        parts = [geometry]
    else:
        parts = [
            g for g in getattr(geometry, "geoms", []) if isinstance(g, (Polygon, MultiPolygon))
        ]
        parts = [q for g in parts for q in (g.geoms if isinstance(g, MultiPolygon) else [g])]
    return [p for p in parts if not p.is_empty and p.area > 1e-3]


def lane_polygon(lane: Lane) -> Polygon:
    return LineString(lane.shape).buffer(lane.width / 2, cap_style="flat", join_style="mitre")


def _offset(lane: Lane, left: float) -> np.ndarray:
    """The lane's centreline shifted `left` metres to its left, vertex by vertex."""
    d = np.diff(lane.shape, axis=0)
    n = np.stack([-d[:, 1], d[:, 0]], 1) / np.hypot(d[:, 0], d[:, 1])[:, None]
    if len(n) == 1:
        return lane.shape + np.repeat(n, 2, 0) * left
    normals = np.concatenate([n[:1], (n[:-1] + n[1:]) / 2, n[-1:]])
    return lane.shape + normals * left


class _Expansion:
    """The tables of one location, with deterministic tokens."""

    def __init__(self, extent):
        self.t: dict = {
            "version": "1.3",
            "canvas_edge": list(extent),
            **{k: [] for k in LAYERS},
            "arcline_path_3": {},
            "connectivity": {},
        }
        self._n = 0

    def token(self, kind: str) -> str:
        self._n += 1
        return f"{kind}-{self._n:08d}"

    def node(self, x: float, y: float) -> str:
        tok = self.token("node")
        self.t["node"].append({"token": tok, "x": round(float(x), 3), "y": round(float(y), 3)})
        return tok

    def polygon(self, poly: Polygon) -> str:
        ring = lambda coords: [self.node(x, y) for x, y in list(coords)[:-1]]  # noqa: E731
        tok = self.token("polygon")
        holes = [{"node_tokens": ring(h.coords)} for h in poly.interiors]
        self.t["polygon"].append(
            {"token": tok, "exterior_node_tokens": ring(poly.exterior.coords), "holes": holes}
        )
        return tok

    def line(self, coords) -> str:
        tok = self.token("line")
        self.t["line"].append({"token": tok, "node_tokens": [self.node(x, y) for x, y in coords]})
        return tok

    def add(self, layer: str, **record) -> dict:
        record = {"token": self.token(layer), **record}
        self.t[layer].append(record)
        return record


def _ends(lane: Lane) -> tuple[list, list]:
    """Lines across the lane's start and end (its from and to edges)."""
    out = []
    for k, sign in ((0, 1), (-1, -1)):
        a, b = lane.shape[k], lane.shape[k + sign]
        d = (b - a) / max(np.linalg.norm(b - a), 1e-9)
        n = np.array([-d[1], d[0]]) * lane.width / 2
        out.append([tuple(a - n), tuple(a + n)])
    return out[0], out[1]


def _divider(m: _Expansion, coords: np.ndarray, kind: str) -> list[dict]:
    return [{"node_token": m.node(x, y), "segment_type": kind} for x, y in coords]


def _lane_record(m: _Expansion, net: RoadNet, lane: Lane, poly: str) -> dict:
    road = net.road_lanes(lane.edge)
    left = "SINGLE_SOLID_YELLOW" if lane is road[-1] else "DOUBLE_DASHED_WHITE"
    right = "SINGLE_SOLID_WHITE" if lane is road[0] else "DOUBLE_DASHED_WHITE"
    start, end = _ends(lane)
    return m.add(
        "lane",
        polygon_token=poly,
        lane_type="CAR",
        from_edge_line_token=m.line(start),
        to_edge_line_token=m.line(end),
        left_lane_divider_segments=_divider(m, _offset(lane, lane.width / 2), left),
        right_lane_divider_segments=_divider(m, _offset(lane, -lane.width / 2), right),
    )


def _lanes(m: _Expansion, net: RoadNet) -> dict[str, str]:
    """Lanes, lane connectors, their arcline paths and connectivity → lane id → token."""
    tokens = {}
    for lane in sorted(net.lanes.values(), key=lambda ln: ln.id):
        if lane.kind not in ("road", "internal") or lane.geometric_length < 0.05:
            continue
        poly = m.polygon(lane_polygon(lane))
        rec = (
            m.add("lane_connector", polygon_token=poly)
            if lane.kind == "internal"
            else _lane_record(m, net, lane, poly)
        )
        tokens[lane.id] = rec["token"]
        m.t["arcline_path_3"][rec["token"]] = arcline_paths(lane.shape)
        m.t["connectivity"][rec["token"]] = {"incoming": [], "outgoing": []}
    for c in net.connections:
        a, b = tokens.get(c.from_lane), tokens.get(c.via or c.to_lane)
        if a and b and b not in m.t["connectivity"][a]["outgoing"]:
            m.t["connectivity"][a]["outgoing"].append(b)
            m.t["connectivity"][b]["incoming"].append(a)
    return tokens


def _hull(m: _Expansion, geometry) -> str:
    return m.polygon(_polygons(geometry.convex_hull)[0])


def _drivable(m: _Expansion, net: RoadNet) -> tuple[str, dict, dict]:
    """The drivable area (streets' lanes, paths through junctions, junction areas without their
    corner sidewalks; 1-cm seams between SUMO's lane shapes closed) → (its token, street edge →
    its lanes' polygon, junction → its area)."""
    walking = unary_union(
        [
            Polygon(ln.shape).buffer(0)
            for ln in net.lanes.values()
            if ln.kind == "walkingarea" and len(ln.shape) >= 3
        ]
    )
    road = {
        e: unary_union([lane_polygon(ln) for ln in net.road_lanes(e)])
        for e, edge in net.edges.items()
        if not edge.function
    }
    road = {e: g for e, g in road.items() if not g.is_empty}
    junctions = {
        j: Polygon(jn.shape).buffer(0).difference(walking)
        for j, jn in net.junctions.items()
        if jn.type not in ("internal", "dead_end") and len(jn.shape) >= 3
    }
    paths = [
        lane_polygon(ln)
        for ln in net.lanes.values()
        if ln.kind == "internal" and ln.geometric_length > 0.05
    ]
    area = unary_union(list(road.values()) + list(junctions.values()) + paths)
    area = area.buffer(0.1, join_style="mitre").buffer(-0.1, join_style="mitre").simplify(0.02)
    da = m.add("drivable_area", polygon_tokens=[m.polygon(p) for p in _polygons(area)])
    return da["token"], road, junctions


def _areas(m: _Expansion, net: RoadNet) -> dict[str, str]:
    """Drivable area, road segments and blocks, crossings, walkways → edge id → road block."""
    da, road, junctions = _drivable(m, net)
    blocks, segments = {}, {}
    for e in sorted(road):
        edge = net.edges[e]
        pair = f"{edge.to_node}_{edge.from_node}"
        if pair in road and pair < e:
            continue  # (the street's segment came with its pair)
        ways = [e] + ([pair] if pair in road else [])
        seg = m.add(
            "road_segment",
            polygon_token=_hull(m, unary_union([road[w] for w in ways])),
            is_intersection=False,
            drivable_area_token=da,
        )
        for one in ways:
            start, end = _ends(net.road_lanes(one)[-1])
            blocks[one] = m.add(
                "road_block",
                polygon_token=_hull(m, road[one]),
                from_edge_line_token=m.line(start),
                to_edge_line_token=m.line(end),
                road_segment_token=seg["token"],
            )["token"]
    for j in sorted(junctions):
        for p in _polygons(junctions[j])[:1]:
            segments[j] = m.add(
                "road_segment",
                polygon_token=m.polygon(p),
                is_intersection=True,
                drivable_area_token=da,
            )["token"]
    for ln in sorted(net.lanes.values(), key=lambda ln: ln.id):
        if ln.kind == "crossing":
            has_outline = ln.outline is not None and len(ln.outline) >= 3
            outline = Polygon(ln.outline).buffer(0) if has_outline else lane_polygon(ln)
            junction = ln.edge[1:].rsplit("_", 1)[0]
            for p in _polygons(outline)[:1]:
                m.add(
                    "ped_crossing",
                    polygon_token=m.polygon(p),
                    road_segment_token=segments.get(junction, ""),
                )
        elif ln.kind == "sidewalk" or (ln.kind == "walkingarea" and len(ln.shape) >= 3):
            shape = lane_polygon(ln) if ln.kind == "sidewalk" else Polygon(ln.shape).buffer(0)
            for p in _polygons(shape):
                m.add("walkway", polygon_token=m.polygon(p))
    return blocks


def _dividers(m: _Expansion, net: RoadNet, blocks: dict[str, str]) -> None:
    """Road dividers (a street's centre line, once per street) and lane dividers (between the
    lanes of one direction)."""
    segment_of = {r["token"]: r["road_segment_token"] for r in m.t["road_block"]}
    for e in sorted(blocks):
        edge = net.edges[e]
        road = net.road_lanes(e)
        pair = f"{edge.to_node}_{edge.from_node}"
        if pair not in blocks or e < pair:
            m.add(
                "road_divider",
                line_token=m.line(_offset(road[-1], road[-1].width / 2)),
                road_segment_token=segment_of[blocks[e]],
            )
        for right in road[:-1]:
            line = m.line(_offset(right, right.width / 2))
            nodes = m.t["line"][-1]["node_tokens"]
            m.add(
                "lane_divider",
                line_token=line,
                lane_divider_segments=[
                    {"node_token": n, "segment_type": "DOUBLE_DASHED_WHITE"} for n in nodes
                ],
            )


def _light(m: _Expansion, head, block: str) -> dict:
    """A traffic_light record: the head's pose, a short line along its facing, its three lamps."""
    _, _, h = HEAD_SIZE
    tip = (head.x + np.cos(head.yaw) * 0.5, head.y + np.sin(head.yaw) * 0.5)
    zero = {"tx": 0.0, "ty": 0.0, "rx": 0.0, "ry": 0.0, "rz": 0.0}
    items = [
        {
            "color": colour,
            "shape": "CIRCLE",
            "rel_pos": {**zero, "tz": round(dz, 3)},
            "to_road_block_tokens": [],
        }
        for colour, dz in (("RED", h * 0.32), ("YELLOW", 0.0), ("GREEN", -h * 0.32))
    ]
    pose = {
        "tx": round(head.x, 3),
        "ty": round(head.y, 3),
        "tz": head.z,
        "rx": 0.0,
        "ry": 0.0,
        "rz": round(head.yaw, 6),
    }
    return m.add(
        "traffic_light",
        line_token=m.line([(head.x, head.y), tip]),
        traffic_light_type="VERTICAL",
        from_road_block_token=block,
        items=items,
        pose=pose,
    )


def _signals(m: _Expansion, net: RoadNet, blocks: dict[str, str]) -> None:
    """Traffic lights (one per signal head) and the stop lines, each with its lane's lights."""
    lights: dict[str, list[str]] = {}
    for head in signal_heads(net):
        lights.setdefault(head.lane, []).append(_light(m, head, blocks.get(head.edge, ""))["token"])
    for sl in stop_lines(net):
        a, b = np.array(sl.a), np.array(sl.b)
        back = -np.array([np.cos(sl.heading), np.sin(sl.heading)]) * STOP_LINE_DEPTH
        m.add(
            "stop_line",
            polygon_token=m.polygon(Polygon([a, b, b + back, a + back])),
            stop_line_type=sl.kind,
            ped_crossing_tokens=[],
            traffic_light_tokens=lights.get(sl.lane, []),
            road_block_token=blocks.get(sl.edge, ""),
        )


def expansion_json(net: RoadNet | None, extent) -> dict:
    """The expansion table of one location: the city's layers, or empty ones."""
    m = _Expansion(extent)
    if net is not None:
        blocks = _areas(m, net)
        _lanes(m, net)
        _dividers(m, net, blocks)
        _signals(m, net, blocks)
    return m.t


def write_expansion(dataroot: str | Path, net: RoadNet) -> None:
    """maps/expansion/<location>.json for all four locations (the others empty)."""
    folder = Path(dataroot) / "maps" / "expansion"
    folder.mkdir(parents=True, exist_ok=True)
    for location, extent in MAP_EXTENTS.items():
        table = expansion_json(net if location == LOCATION else None, extent)
        (folder / f"{location}.json").write_text(json.dumps(table, separators=(",", ":")))


__all__ = ["LAYERS", "LOCATION", "MAP_EXTENTS", "expansion_json", "lane_polygon", "write_expansion"]
