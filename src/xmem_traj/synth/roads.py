"""The synthetic city's roads: gently curving avenues across the map's canvas, each with
junctions where side streets leave it, shared by every scene of a dataset — as nuScenes scenes
share their city's map, so that the map expansion is one consistent map, whoever drives where.
A scene drives along a stretch of one avenue (`City.stretch`), in either direction.

Geometry: a road is its centreline (arc length s, position, heading); a point is (s, d) with
the lateral offset d positive to the left. Traffic keeps right: forward lanes have d < 0,
oncoming ones d > 0. Side streets leave at a junction's s along the road's normal, on the side
-1 (d < 0) or +1 (d > 0).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LANE_W = 3.5
FORWARD_LANES = (-1.75, -5.25)
ONCOMING_LANES = (1.75, 5.25)
PARKING_D = 7.6
SIDEWALK_D = 9.6
ROAD_HALF = 7.0      # edge of the driving lanes
KERB = 8.5           # edge of the parking strip / start of the sidewalk

JUNCTION_SPACING = (60.0, 140.0)   # metres between junctions (urban blocks)
JUNCTION_SIDES = {(-1,): 0.3, (1,): 0.3, (-1, 1): 0.4}  # T-junctions right / left, crossroads
STREET_LENGTH = 160.0              # how far a side street reaches from the road's edge
STREET_HALF_WIDTH = 4.0
AVENUE_BEND = (700.0, 1600.0)      # wavelengths of an avenue's bends (m) ...
AVENUE_MIN_RADIUS = 150.0          # ... never tighter than this
AVENUE_SWAY = 30.0                 # lateral amplitude of each of its two bends at most (m)
#: Between neighbouring avenues: room for both swaying and both sets of side streets.
AVENUE_GAP = 4 * AVENUE_SWAY + 2 * (STREET_LENGTH + KERB) + 20.0


@dataclass(frozen=True)
class Junction:
    """A side street leaving the road at arc length s, perpendicular to it, on the sides given
    (-1: d < 0, the right of the forward direction; +1: d > 0)."""

    s: float
    sides: tuple[int, ...]


@dataclass
class Road:
    """Centreline sampled every 0.5 m: arc length s, position and heading; and its junctions,
    in order of s."""

    s: np.ndarray
    x: np.ndarray
    y: np.ndarray
    heading: np.ndarray
    junctions: tuple[Junction, ...] = ()

    def pose(self, s, d):
        """Point at arc length s, lateral offset d (left positive) → x, y, road heading."""
        x = np.interp(s, self.s, self.x)
        y = np.interp(s, self.s, self.y)
        h = np.interp(s, self.s, self.heading)  # integrated, hence already continuous
        return x - d * np.sin(h), y + d * np.cos(h), h

    def street(self, junction: Junction, side: int) -> np.ndarray:
        """The side street's centreline (2, 2): from inside the road's edge out, straight along
        the road's normal at the junction."""
        x, y, h = self.pose(junction.s, side * (ROAD_HALF - 1.0))
        normal = side * np.array([-np.sin(h), np.cos(h)])
        start = np.array([x, y])
        return np.stack([start, start + normal * (STREET_LENGTH + 1.0 + KERB - ROAD_HALF)])

    def street_heading(self, junction: Junction, side: int) -> float:
        """Direction (yaw) of travel into the side street, away from the road."""
        h = float(np.interp(junction.s, self.s, self.heading))
        return h + side * np.pi / 2

    def streets(self) -> list[np.ndarray]:
        """Every side street's centreline."""
        return [self.street(j, side) for j in self.junctions for side in j.sides]

    def stretch(self, start: float, length: float, *, reverse: bool) -> "Road":
        """The part [start, start + length] of the road as a road of its own (s from 0),
        driven the other way round with `reverse` (headings turned, junction sides swapped)."""
        keep = (self.s >= start - 1.0) & (self.s <= start + length + 1.0)  # (a sample beyond each end)
        s, x, y, h = self.s[keep] - start, self.x[keep], self.y[keep], self.heading[keep]
        junctions = [Junction(j.s - start, j.sides) for j in self.junctions if start <= j.s <= start + length]
        if reverse:  # s' = length - s
            s, x, y, h = length - s[::-1], x[::-1], y[::-1], h[::-1] + np.pi
            junctions = [Junction(float(length - j.s), tuple(-side for side in j.sides))
                         for j in junctions[::-1]]
        return Road(s, x, y, h, tuple(junctions))


def _avenue(rng: np.random.Generator, x0: float, x1: float, y0: float) -> Road:
    """An avenue from x0 to x1 around y = y0: two gentle bends, junctions every block."""
    xs = np.arange(x0, x1, 0.1)
    ys = np.full_like(xs, y0)
    for _ in range(2):
        wavelength = rng.uniform(*AVENUE_BEND)
        k = 2 * np.pi / wavelength
        amplitude = rng.uniform(0.3, 1.0) * min(AVENUE_SWAY, 1 / (2 * AVENUE_MIN_RADIUS * k * k))
        ys = ys + amplitude * np.sin(k * xs + rng.uniform(0, 2 * np.pi))
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(xs), np.diff(ys)))])
    s = np.arange(0.0, arc[-1], 0.5)
    x, y = np.interp(s, arc, xs), np.interp(s, arc, ys)
    heading = np.unwrap(np.arctan2(np.gradient(y), np.gradient(x)))
    junctions = []
    sj = rng.uniform(20.0, JUNCTION_SPACING[1])
    kinds = list(JUNCTION_SIDES)
    while sj < s[-1] - 20.0:
        junctions.append(Junction(float(sj), kinds[rng.choice(len(kinds), p=list(JUNCTION_SIDES.values()))]))
        sj += rng.uniform(*JUNCTION_SPACING)
    return Road(s, x, y, heading, tuple(junctions))


@dataclass
class City:
    """A location's road network: parallel avenues across the canvas, far enough apart that
    their side streets never meet."""

    avenues: tuple[Road, ...]

    @classmethod
    def random(cls, rng: np.random.Generator, extent: tuple[float, float]) -> "City":
        """Avenues across a canvas of `extent` (metres, the map's), with a margin for their
        side streets inside it (the devkit's map masks end at the canvas)."""
        width, height = extent
        margin = STREET_LENGTH + KERB + 2 * AVENUE_SWAY + 10.0
        count = int((height - 2 * margin) // AVENUE_GAP) + 1
        if count < 1 or width < 2 * margin + 800:
            raise ValueError(f"a canvas of {extent} m holds no avenue")
        first = (height - (count - 1) * AVENUE_GAP) / 2
        return cls(tuple(_avenue(rng, margin, width - margin, first + i * AVENUE_GAP) for i in range(count)))

    def stretch(self, rng: np.random.Generator, length: float) -> Road:
        """A scene's road: a random stretch of `length` metres of a random avenue, either way."""
        avenue = self.avenues[int(rng.integers(len(self.avenues)))]
        return avenue.stretch(rng.uniform(0.0, avenue.s[-1] - length), length, reverse=bool(rng.random() < 0.5))

    def streets(self) -> list[np.ndarray]:
        return [street for avenue in self.avenues for street in avenue.streets()]


__all__ = ["AVENUE_GAP", "City", "FORWARD_LANES", "Junction", "KERB", "ONCOMING_LANES", "PARKING_D",
           "ROAD_HALF", "Road", "SIDEWALK_D", "STREET_LENGTH"]
