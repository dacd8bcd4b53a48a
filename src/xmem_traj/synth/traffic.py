"""One scene's traffic, run in-process by SUMO (libsumo): the city filled and warmed up, the ego
inserted, then every step of the scene recorded around the ego — each vehicle's front bumper
position and heading (SUMO's conventions, converted later), speed and acceleration as SUMO
moved it, its lane, its leader and the signal controlling it; the pedestrians; the signals'
states. Same scene seed → same recording (SUMO's own randomness is seeded).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .demand import Demand
from .network import City

log = logging.getLogger(__name__)

STEP_S = 0.2  # SUMO's step (s)
WARMUP_S = 60.0  # simulated before the recording starts: queues form at signals
EGO_LEAD_S = 12.0  # the ego departs this long before the recording starts
RECORD_RADIUS_M = 130.0  # vehicles and pedestrians recorded around the ego
LEADER_LOOKAHEAD_M = 100.0
LANE_CHANGE_S = 4.0  # a lane change's lateral move (SUMO's continuous lane change)
SUMO_OPTIONS = [
    "--step-length",
    str(STEP_S),
    "--lanechange.duration",
    str(LANE_CHANGE_S),
    "--time-to-teleport",
    "-1",
    "--collision.action",
    "warn",
    "--collision.check-junctions",
    "--no-step-log",
    "--no-warnings",
    "--duration-log.disable",
]
_SCALARS = (
    "x",
    "y",
    "angle",
    "speed",
    "accel",
    "lanepos",
    "latpos",
    "lat_speed",
    "gap",
    "leader_speed",
    "leader_accel",
    "tls_dist",
)
_LABELS = ("lane", "leader", "tls", "tls_state", "link_state", "link_dir")


@dataclass
class Trace:
    """One recorded actor: per step from `first` (index into the recording's steps), scalar
    arrays (_SCALARS; nan where unknown) and string lists (_LABELS; "" where none)."""

    id: str
    vtype: str
    first: int
    values: dict[str, list] = field(default_factory=dict)

    def append(self, **row) -> None:
        for k, v in row.items():
            self.values.setdefault(k, []).append(v)

    def array(self, key: str) -> np.ndarray:
        return np.asarray(self.values[key], float)

    @property
    def steps(self) -> int:
        return len(self.values.get("x", ()))


@dataclass
class Recording:
    """The recorded steps: sim times t0 + i * STEP_S, i < n."""

    t0: float
    n: int
    vehicles: dict[str, Trace]
    persons: dict[str, Trace]
    signals: dict[str, list[str]]  # tls id → state string per step
    collisions: int
    teleports: int
    ego_route: list[str]


def _start(net: Path, routes: Path, seed: int) -> None:
    import libsumo

    libsumo.start(["sumo", "-n", str(net), "-r", str(routes), "--seed", str(seed), *SUMO_OPTIONS])


def _vehicle_row(ls, tc, vid: str, r: dict) -> dict:
    """One vehicle's recorded values at the current step."""
    x, y = r[tc.VAR_POSITION]
    leader = ls.vehicle.getLeader(vid, LEADER_LOOKAHEAD_M)
    tls = ls.vehicle.getNextTLS(vid)
    links = ls.vehicle.getNextLinks(vid)
    row = dict(
        x=x,
        y=y,
        angle=r[tc.VAR_ANGLE],
        speed=r[tc.VAR_SPEED],
        accel=r[tc.VAR_ACCELERATION],
        lanepos=r[tc.VAR_LANEPOSITION],
        latpos=r[tc.VAR_LANEPOSITION_LAT],
        lat_speed=r[tc.VAR_SPEED_LAT],
        lane=r[tc.VAR_LANE_ID],
        leader="",
        gap=np.nan,
        leader_speed=np.nan,
        leader_accel=np.nan,
        tls="",
        tls_state="",
        tls_dist=np.nan,
        link_state=links[0][5] if links else "",
        link_dir=links[0][6] if links else "",
    )
    if leader and leader[0]:
        row.update(
            leader=leader[0],
            gap=leader[1],
            leader_speed=ls.vehicle.getSpeed(leader[0]),
            leader_accel=ls.vehicle.getAcceleration(leader[0]),
        )
    if tls:
        tid, index, dist, state = tls[0]
        row.update(tls=f"{tid}#{index}", tls_state=state, tls_dist=dist)
    return row


def simulate(city: City, demand: Demand, seed: int, record_s: float) -> Recording:
    """Run the scene: warm up, then record `record_s` seconds around the ego → Recording.
    Raises RuntimeError where the ego is not on the road when the recording starts."""
    import libsumo as ls
    from libsumo import constants as tc

    vvars = [
        tc.VAR_POSITION,
        tc.VAR_ANGLE,
        tc.VAR_SPEED,
        tc.VAR_ACCELERATION,
        tc.VAR_LANE_ID,
        tc.VAR_LANEPOSITION,
        tc.VAR_LANEPOSITION_LAT,
        tc.VAR_SPEED_LAT,
    ]
    pvars = [tc.VAR_POSITION, tc.VAR_ANGLE, tc.VAR_SPEED]
    with tempfile.TemporaryDirectory(prefix="xmem-sumo-") as tmp:
        routes = Path(tmp) / "scene.rou.xml"
        routes.write_text(demand.routes_xml)
        _start(city.net_path, routes, seed)
        try:
            return _run(ls, tc, demand, record_s, vvars, pvars)
        finally:
            ls.close()


def _run(ls, tc, demand: Demand, record_s: float, vvars, pvars) -> Recording:
    collisions = teleports = 0
    while ls.simulation.getTime() < WARMUP_S - 1e-6:
        ls.simulationStep()
        collisions += ls.simulation.getCollidingVehiclesNumber()
        teleports += ls.simulation.getStartingTeleportNumber()
    if demand.ego_id not in ls.vehicle.getIDList():
        raise RuntimeError("the ego is not on the road when the recording starts")
    ls.vehicle.subscribeContext(demand.ego_id, tc.CMD_GET_VEHICLE_VARIABLE, RECORD_RADIUS_M, vvars)
    ls.vehicle.subscribeContext(demand.ego_id, tc.CMD_GET_PERSON_VARIABLE, RECORD_RADIUS_M, pvars)
    t0, n = ls.simulation.getTime(), int(round(record_s / STEP_S))
    vehicles: dict[str, Trace] = {}
    persons: dict[str, Trace] = {}
    signals: dict[str, list[str]] = {}
    tls_ids = sorted(ls.trafficlight.getIDList())
    for i in range(n):
        ls.simulationStep()
        collisions += ls.simulation.getCollidingVehiclesNumber()
        teleports += ls.simulation.getStartingTeleportNumber()
        if demand.ego_id not in ls.vehicle.getIDList():
            raise RuntimeError("the ego left the road during the recording")
        _record_step(
            ls,
            tc,
            i,
            ls.vehicle.getContextSubscriptionResults(demand.ego_id),
            vehicles,
            persons,
            vvars,
            pvars,
        )
        for tid in tls_ids:
            signals.setdefault(tid, []).append(ls.trafficlight.getRedYellowGreenState(tid))
    return Recording(t0, n, vehicles, persons, signals, collisions, teleports, demand.ego_route)


def _record_step(ls, tc, i: int, found: dict, vehicles: dict, persons: dict, vvars, pvars) -> None:
    """One step's rows: every vehicle and person within the radius, and those recorded before
    that are still in the simulation (a track, once begun, runs on until its actor leaves the
    simulation or the recording ends: no gaps, no actor vanishing in view)."""
    here = {v: r for v, r in found.items() if tc.VAR_LANE_ID in r}
    people = {p: r for p, r in found.items() if tc.VAR_LANE_ID not in r}
    on_road = set(ls.vehicle.getIDList())
    for vid in vehicles:
        if vid not in here and vid in on_road and vehicles[vid].first + vehicles[vid].steps == i:
            here[vid] = {var: _vehicle_var(ls, vid, var, tc) for var in vvars}
    walking = set(ls.person.getIDList())
    for pid in persons:
        if pid not in people and pid in walking and persons[pid].first + persons[pid].steps == i:
            people[pid] = {
                tc.VAR_POSITION: ls.person.getPosition(pid),
                tc.VAR_ANGLE: ls.person.getAngle(pid),
                tc.VAR_SPEED: ls.person.getSpeed(pid),
            }
    for vid in sorted(here):
        track = vehicles.get(vid)
        if track is None:
            track = vehicles[vid] = Trace(vid, ls.vehicle.getTypeID(vid), i)
        elif track.first + track.steps != i:
            continue  # (it had left the simulation: never recorded again)
        track.append(**_vehicle_row(ls, tc, vid, here[vid]))
    for pid in sorted(people):
        track = persons.get(pid)
        if track is None:
            track = persons[pid] = Trace(pid, "pedestrian", i)
        elif track.first + track.steps != i:
            continue
        x, y = people[pid][tc.VAR_POSITION]
        track.append(x=x, y=y, angle=people[pid][tc.VAR_ANGLE], speed=people[pid][tc.VAR_SPEED])


def _vehicle_var(ls, vid: str, var: int, tc):
    """One recorded variable of a vehicle outside the context subscription."""
    getter = {
        tc.VAR_POSITION: ls.vehicle.getPosition,
        tc.VAR_ANGLE: ls.vehicle.getAngle,
        tc.VAR_SPEED: ls.vehicle.getSpeed,
        tc.VAR_ACCELERATION: ls.vehicle.getAcceleration,
        tc.VAR_LANE_ID: ls.vehicle.getLaneID,
        tc.VAR_LANEPOSITION: ls.vehicle.getLanePosition,
        tc.VAR_LANEPOSITION_LAT: ls.vehicle.getLateralLanePosition,
        tc.VAR_SPEED_LAT: ls.vehicle.getLateralSpeed,
    }[var]
    return getter(vid)


__all__ = ["EGO_LEAD_S", "RECORD_RADIUS_M", "Recording", "STEP_S", "Trace", "WARMUP_S", "simulate"]
