"""The agents of a scene as the cameras and the annotations see them: SUMO's recording
(traffic.py) turned into boxes — centre, size, yaw (counter-clockwise from +x) — on the
recording's time grid, with the cue states their lamps show (vehicles.py fills them).

SUMO conventions converted here: a vehicle's position is the middle of its front bumper, its
angle navigational degrees (0 = north, clockwise). A vehicle on a lane of a street, its whole
length on that lane, is aligned with the lane (SUMO keeps the gaps between vehicles in the
lanes' frame, so their boxes do not meet); elsewhere (turning through a junction) its heading
is SUMO's, the direction from its rear to its front bumper.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .demand import VEHICLE_TYPES
from .netxml import RoadNet
from .traffic import STEP_S, Recording, Trace

BLINK_PERIOD = 1 / 1.5  # indicators flash at 1.5 Hz (90 a minute) ...
BLINK_DUTY = 0.5  # ... half of each period lit
PEDESTRIAN = ("human.pedestrian.adult", (0.65, 0.6, 1.75))
EGO_REAR_AXLE_M = 1.0  # nuScenes' ego frame sits on the rear axle: this far ahead of the rear

SIZES = {category: size for _, size, category, _, _ in VEHICLE_TYPES.values()}
SIZES[PEDESTRIAN[0]] = PEDESTRIAN[1]


@dataclass
class Track:
    """One agent on the step grid from scene time t0: box centre, yaw, speed and
    acceleration; cue states (brake lamps lit, indicators active) per step."""

    key: str  # SUMO's id
    category: str
    t0: float
    x: np.ndarray
    y: np.ndarray
    yaw: np.ndarray
    speed: np.ndarray
    accel: np.ndarray
    brake: np.ndarray = None
    left: np.ndarray = None
    right: np.ndarray = None
    colour: tuple[int, int, int] = (128, 128, 128)
    parked: bool = False
    manoeuvres: list = field(default_factory=list)
    misleading: list = field(default_factory=list)
    trace: Trace | None = None  # what SUMO recorded (lanes, leader, signal, ...)

    def __post_init__(self):
        n = len(self.x)
        for name in ("brake", "left", "right"):
            if getattr(self, name) is None:
                setattr(self, name, np.zeros(n, bool))
        self.yaw = np.unwrap(self.yaw)
        self.refresh()

    def refresh(self) -> None:
        """Recompute the blink phases after the indicator arrays changed."""
        self._onset = {
            side: _run_starts(getattr(self, side), self.t0) for side in ("left", "right")
        }

    @property
    def size(self) -> tuple[float, float, float]:
        return SIZES[self.category]

    @property
    def t1(self) -> float:
        return self.t0 + (len(self.x) - 1) * STEP_S

    def alive(self, t: float) -> bool:
        return self.t0 - 1e-6 <= t <= self.t1 + 1e-6

    def index(self, t: float) -> int:
        """The step at or before time t (clipped to the track)."""
        return int(np.clip(np.floor((t - self.t0) / STEP_S + 1e-6), 0, len(self.x) - 1))

    def at(self, t: float) -> dict:
        """Linearly interpolated pose at time t; cue states at the nearest step, indicators
        lit only in the on-phase of their blink."""
        f = (t - self.t0) / STEP_S
        i = int(np.clip(np.floor(f), 0, len(self.x) - 2)) if len(self.x) > 1 else 0
        j = min(i + 1, len(self.x) - 1)
        a = float(np.clip(f - i, 0.0, 1.0)) if j > i else 0.0
        k = i if a < 0.5 else j
        state = {
            "x": self.x[i] * (1 - a) + self.x[j] * a,
            "y": self.y[i] * (1 - a) + self.y[j] * a,
            "yaw": self.yaw[i] * (1 - a) + self.yaw[j] * a,
            "speed": self.speed[i] * (1 - a) + self.speed[j] * a,
            "brake": bool(self.brake[k]),
        }
        for side in ("left", "right"):
            active = bool(getattr(self, side)[k])
            state[f"{side}_active"] = active
            state[side] = (
                active and ((t - self._onset[side][k]) % BLINK_PERIOD) < BLINK_DUTY * BLINK_PERIOD
            )
        return state


def _run_starts(active: np.ndarray, t0: float) -> np.ndarray:
    """For each step, the time its run of True values began (nan where False)."""
    starts = np.full(len(active), np.nan)
    begin = None
    for i, on in enumerate(active):
        if on and begin is None:
            begin = t0 + i * STEP_S
        elif not on:
            begin = None
        if on:
            starts[i] = begin
    return starts


def vehicle_boxes(trace: Trace, net: RoadNet, length: float) -> tuple[np.ndarray, ...]:
    """Box centre (x, y) and yaw per step of a recorded vehicle (see the module's doc)."""
    fx, fy = trace.array("x"), trace.array("y")
    yaw = np.radians(90.0 - trace.array("angle"))
    for k, (lane_id, pos) in enumerate(zip(trace.values["lane"], trace.values["lanepos"])):
        lane = net.lanes.get(lane_id)
        if lane is not None and lane.kind == "road" and pos >= length:
            yaw[k] = lane.heading_at(pos - length / 2)
    return fx - np.cos(yaw) * length / 2, fy - np.sin(yaw) * length / 2, yaw


def tracks_from(rec: Recording, net: RoadNet, scene_t0: float) -> tuple[Track, list[Track]]:
    """The ego and the other agents of a recording; scene time = sim time - scene_t0."""
    ego, agents = None, []
    category = {name: cat for name, (_, _, cat, _, _) in VEHICLE_TYPES.items()}
    for key in sorted(rec.vehicles):
        trace = rec.vehicles[key]
        cat = category[trace.vtype.removesuffix("_rlr")]
        x, y, yaw = vehicle_boxes(trace, net, SIZES[cat][1])
        track = Track(
            key,
            cat,
            rec.t0 + trace.first * STEP_S - scene_t0,
            x,
            y,
            yaw,
            trace.array("speed"),
            trace.array("accel"),
            trace=trace,
        )
        if key == "ego":
            ego = track
        elif trace.steps >= 2:
            agents.append(track)
    for key in sorted(rec.persons):
        trace = rec.persons[key]
        if trace.steps < 2:
            continue
        speed = trace.array("speed")
        agents.append(
            Track(
                key,
                PEDESTRIAN[0],
                rec.t0 + trace.first * STEP_S - scene_t0,
                trace.array("x"),
                trace.array("y"),
                np.radians(90.0 - trace.array("angle")),
                speed,
                np.gradient(speed, STEP_S) if len(speed) > 1 else speed * 0,
            )
        )
    if ego is None:
        raise RuntimeError("the recording has no ego")
    return ego, agents


def ego_pose(ego: Track, t: float) -> tuple[float, float, float]:
    """nuScenes' ego pose at time t: its rear axle (x, y) and yaw."""
    st = ego.at(t)
    back = ego.size[1] / 2 - EGO_REAR_AXLE_M
    return st["x"] - np.cos(st["yaw"]) * back, st["y"] - np.sin(st["yaw"]) * back, st["yaw"]


__all__ = [
    "BLINK_DUTY",
    "BLINK_PERIOD",
    "SIZES",
    "Track",
    "ego_pose",
    "tracks_from",
    "vehicle_boxes",
]


def box_corners_xy(
    x: np.ndarray, y: np.ndarray, yaw: np.ndarray, w: np.ndarray, l: np.ndarray
) -> np.ndarray:
    """Ground corners (n, 4, 2) of boxes centred at (x, y) with yaw, width w and length l."""
    c, s = np.cos(yaw), np.sin(yaw)
    dx = np.array([1, 1, -1, -1]) * np.asarray(l)[..., None] / 2
    dy = np.array([1, -1, -1, 1]) * np.asarray(w)[..., None] / 2
    return np.stack(
        [
            x[..., None] + c[..., None] * dx - s[..., None] * dy,
            y[..., None] + s[..., None] * dx + c[..., None] * dy,
        ],
        -1,
    )


def overlapping(corners: np.ndarray, tolerance: float = 0.01) -> list[tuple[int, int]]:
    """Pairs (i < j) of the boxes (n, 4, 2) whose footprints overlap by more than `tolerance`
    metres on every separating axis (the separating axis theorem)."""
    n = len(corners)
    if n < 2:
        return []
    edges = corners[:, [1, 3]] - corners[:, [0, 0]]  # (n, 2, 2): two edge directions
    axes = edges / np.linalg.norm(edges, axis=-1, keepdims=True)
    proj = np.einsum("akd,bcd->akbc", axes, corners)  # (n axes-owner, 2, n box, 4)
    lo, hi = proj.min(-1), proj.max(-1)  # (n, 2, n)
    sep = np.zeros((n, n), bool)
    for k in range(2):
        lo_k, hi_k = lo[:, k, :], hi[:, k, :]  # axis of box a, box b
        gap_ab = np.minimum(hi_k[:, :, None], hi_k[:, None, :]) - np.maximum(
            lo_k[:, :, None], lo_k[:, None, :]
        )
        # gap_ab[a, b, c]: overlap of boxes b and c on axis k of box a
        idx = np.arange(n)
        sep |= gap_ab[idx, idx, :] < tolerance  # axis of b separates b and c
        sep |= gap_ab[idx[None, :], idx[None, :], idx[:, None]].T < tolerance
    both = ~(sep | sep.T)
    i, j = np.nonzero(np.triu(both, 1))
    return list(zip(i.tolist(), j.tolist()))
