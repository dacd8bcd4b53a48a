"""The city's ground as flat polygons, built once per city: junctions and lanes (asphalt),
sidewalks and walking areas, lane markings (dashed lane dividers, double yellow centre lines),
zebra crossings and stop lines. Each frame draws those near its camera, in layer order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .heads import stop_lines
from .netxml import Lane, RoadNet

ASPHALT, SIDEWALK, GRASS = (72, 72, 76), (170, 168, 160), (95, 120, 70)
WHITE, YELLOW = (235, 235, 235), (230, 190, 40)
LINE_W = 0.12  # marking width (m)
DASH = (3.0, 9.0)  # lane divider: 10 ft line, 30 ft gap (MUTCD §3A.06)
ZEBRA = (0.5, 0.5)  # crossing bars and gaps (m)
STOP_LINE_DEPTH = 0.4  # MUTCD §3B.16: 12–24 in


@dataclass
class Ground:
    """Batches in drawing order, each: polygons (n, k, 3) of one vertex count (padded by
    repeating the last vertex), their colours (n tuples), centres (n, 2) and radii (n,)."""

    batches: list[tuple[np.ndarray, list, np.ndarray, np.ndarray]]


def _strip(a: np.ndarray, b: np.ndarray, half: float, offset: float = 0.0) -> np.ndarray:
    """A rectangle (4, 2) along the segment a → b, `half` wide on each side of the line
    shifted `offset` to its left."""
    d = (b - a) / max(np.linalg.norm(b - a), 1e-9)
    n = np.array([-d[1], d[0]])
    a, b = a + n * offset, b + n * offset
    return np.array([a - n * half, b - n * half, b + n * half, a + n * half])


def _segments(lane: Lane, offset: float, half: float, dash: tuple[float, float] | None):
    """Rectangles along a lane's shape shifted `offset` to its left; dashed if asked."""
    out = []
    for a, b in zip(lane.shape[:-1], lane.shape[1:]):
        length = float(np.linalg.norm(b - a))
        if dash is None:
            out.append(_strip(a, b, half, offset))
            continue
        d = (b - a) / max(length, 1e-9)
        for s in np.arange(0.0, length - dash[0], dash[0] + dash[1]):
            out.append(_strip(a + d * s, a + d * (s + dash[0]), half, offset))
    return out


def _crossing_bars(lane: Lane) -> list[np.ndarray]:
    """Zebra bars across a crossing: along the road, spaced along the walking direction."""
    a, b = lane.shape[0], lane.shape[-1]
    length = float(np.linalg.norm(b - a))
    d = (b - a) / max(length, 1e-9)
    n = np.array([-d[1], d[0]])
    bars = []
    for s in np.arange(0.3, length - ZEBRA[0], sum(ZEBRA)):
        p, q = a + d * s, a + d * (s + ZEBRA[0])
        w = lane.width / 2 - 0.2
        bars.append(np.array([p - n * w, q - n * w, q + n * w, p + n * w]))
    return bars


def _markings(net: RoadNet) -> list[tuple[list[np.ndarray], tuple[int, int, int]]]:
    """Lane dividers (dashed white), centre lines (yellow), crossings' bars and stop lines."""
    dividers, centre = [], []
    for edge in net.edges.values():
        lanes = sorted(
            (net.lanes[i] for i in edge.lanes if net.lanes[i].kind == "road"),
            key=lambda ln: ln.index,
        )
        for right in lanes[:-1]:
            dividers += _segments(right, right.width / 2, LINE_W / 2, DASH)
        if lanes and edge.from_node.startswith("n") and edge.to_node.startswith(("n", "f")):
            centre += _segments(lanes[-1], lanes[-1].width / 2 - 0.12, LINE_W / 2, None)
    crossings = [
        q for lane in net.lanes.values() if lane.kind == "crossing" for q in _crossing_bars(lane)
    ]
    bars = []
    for sl in stop_lines(net):
        a, b = np.array(sl.a), np.array(sl.b)
        back = -np.array([np.cos(sl.heading), np.sin(sl.heading)]) * STOP_LINE_DEPTH
        bars.append(np.array([a, b, b + back, a + back]))
    return [(dividers, WHITE), (centre, YELLOW), (crossings, WHITE), (bars, WHITE)]


def build_ground(net: RoadNet) -> Ground:
    """Every ground polygon of the city, in drawing order."""
    lanes = net.lanes.values()
    junctions = [
        j.shape
        for j in net.junctions.values()
        if j.type not in ("internal", "dead_end") and len(j.shape) >= 3
    ]
    walking = [ln.shape for ln in lanes if ln.kind == "walkingarea" and len(ln.shape) >= 3]
    roads = [
        q
        for ln in lanes
        if ln.kind == "road"
        for q in _segments(ln, 0.0, ln.width / 2 + 0.02, None)
    ]
    sidewalks = [
        q for ln in lanes if ln.kind == "sidewalk" for q in _segments(ln, 0.0, ln.width / 2, None)
    ]
    layers = [(junctions, ASPHALT), (walking, SIDEWALK), (roads, ASPHALT), (sidewalks, SIDEWALK)]
    batches = []
    for shapes, colour in layers + _markings(net):
        if not shapes:
            continue
        k = max(len(s) for s in shapes)
        polys = np.zeros((len(shapes), k, 3))
        for i, shape in enumerate(shapes):
            polys[i, :, :2] = np.concatenate([shape, np.repeat(shape[-1:], k - len(shape), 0)])
        centres = np.array([s.mean(0) for s in shapes])
        radii = np.array([np.linalg.norm(s - c, axis=1).max() for s, c in zip(shapes, centres)])
        batches.append((polys, [colour] * len(shapes), centres, radii))
    return Ground(batches)


__all__ = ["ASPHALT", "GRASS", "Ground", "SIDEWALK", "build_ground"]
