"""Traffic demand of one scene: the vehicle classes (SUMO vTypes: size, car-following with
driver imperfection, lane changing), the vehicles already on the city's streets when the
simulation starts, those entering from its edge, pedestrians on its sidewalks, and the ego's
route — a walk through the city's junctions, turning where it pleases.

Background vehicles get an origin and a destination and SUMO routes them (its router, at
their departure), so they turn where their shortest way turns; SUMO's lane-change model
(LC2013, continuous lane changes of traffic.LANE_CHANGE_S) moves them between lanes.
DEMAND_SOURCES says where each value comes from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .network import City

#: Per class: SUMO vClass, size (nuScenes order: width, length, height, m), nuScenes category,
#: share of vehicles, and vType attributes beyond SUMO's defaults for the class.
VEHICLE_TYPES = {
    "car": ("passenger", (1.9, 4.6, 1.6), "vehicle.car", 0.81, {}),
    "truck": ("truck", (2.5, 7.5, 3.1), "vehicle.truck", 0.14, {}),
    "bus": ("bus", (2.55, 12.0, 3.4), "vehicle.bus.rigid", 0.03, {}),
    "bicycle": ("bicycle", (0.7, 1.8, 1.6), "vehicle.bicycle", 0.02, {}),
}
#: Every motor vehicle: SUMO's Krauss car-following (its driver imperfection sigma 0.5 and
#: reaction tau 1 s are SUMO's defaults), a start-up delay after a stop, lateral moves at most
#: 1 m/s (the sublane model's default).
DRIVER = {"sigma": 0.5, "tau": 1.0, "startupDelay": 1.2, "maxSpeedLat": 1.0, "minGapLat": 0.6}
RED_RUNNER_SHARE = 0.2  # drivers who enter on red ...
RED_RUNNER_S = 1.0  # ... up to this long after it began (SUMO jmDriveAfterRedTime)
FLOW_VEH_H_LANE = 200.0  # vehicles entering per hour per lane of an entry street
FILL_SPACING_M = 80.0  # one vehicle per this many metres of lane at the start
PEDESTRIANS_PER_KM = 8.0  # of sidewalk, walking at the start
EGO_ROUTE_M = 1100.0  # the ego's route: long enough to outlast the scene
TURN_P = {"s": 0.5, "l": 0.25, "r": 0.25}  # the ego's choices at a junction
DEMAND_SOURCES = {
    "vehicle classes": "nuScenes' vehicle annotations are mostly cars (~80 %), then trucks, "
    "buses and bicycles (Caesar et al. 2020, CVPR, fig. 'object classes'); "
    "shares here assumed from it",
    "car-following": "SUMO Krauss model defaults (Krajzewicz et al. 2012): sigma 0.5, tau 1 s, "
    "accel 2.6, decel 4.5 m/s²",
    "start-up delay": "1.2 s, calibrated (synth/calibration.py) so that a queue released by a "
    "green loses 2.0 s and discharges at 1.99 s headways: HCM 2010 start-up "
    "lost time 2.0 s, base saturation flow 1 900 veh/h/lane (1.89 s)",
    "red-light running": "Hunter, 'What is red light running? A case study from Rhode Island' "
    "(20 intersections, 1 359 h of video): 6.3 violations per intersection "
    "hour (1.2-15); a fifth of drivers here enter up to 1 s into red, "
    "measured 4.7 per signal hour over 20 min of the whole city "
    "(synth/calibration.py; 0.35 % of the stop-line crossings)",
    "lane changing": "SUMO LC2013 lane-change model (Erdmann 2015, 'SUMO's lane-changing "
    "model'), continuous lane changes of 4 s (see cues / lane change duration)",
    "entering flow": "assumed: 200 veh/h per entry lane, a light urban volume, about a tenth of "
    "a signalised lane's capacity (HCM 2010 base saturation flow 1 900 veh/h/lane)",
    "pedestrians": "assumed (8 walking per km of sidewalk at the start)",
}


@dataclass
class Demand:
    """A scene's SUMO routes file and its ego."""

    routes_xml: str
    ego_id: str
    ego_route: list[str]
    ego_depart: float


def vtypes_xml() -> str:
    """The vTypes: one per class, and each motor class's red-light runners ("<class>_rlr")."""
    out = []
    for name, (vclass, (w, l, h), _, _, extra) in VEHICLE_TYPES.items():
        attrs = {"vClass": vclass, "length": l, "width": w, "height": h, **extra}
        if vclass != "bicycle":
            attrs.update(DRIVER)
        out.append(f'<vType id="{name}" ' + " ".join(f'{k}="{v}"' for k, v in attrs.items()) + "/>")
        if vclass != "bicycle":
            attrs["jmDriveAfterRedTime"] = RED_RUNNER_S
            out.append(
                f'<vType id="{name}_rlr" ' + " ".join(f'{k}="{v}"' for k, v in attrs.items()) + "/>"
            )
    return "\n".join(out)


def _edge_graph(city: City) -> dict[str, list[tuple[str, str]]]:
    """Road edge → [(next road edge, direction s/l/r)] as the network's lanes connect."""
    net, graph = city.net, {}
    for c in net.connections:
        a, b = net.lanes.get(c.from_lane), net.lanes.get(c.to_lane)
        if a is None or b is None or a.kind != "road" or b.kind != "road" or c.dir not in TURN_P:
            continue
        nxt = graph.setdefault(a.edge, [])
        if (b.edge, c.dir) not in nxt:
            nxt.append((b.edge, c.dir))
    return graph


def ego_route(city: City, rng: np.random.Generator) -> list[str]:
    """A walk of at least EGO_ROUTE_M metres over the city's inner streets."""
    graph, inner = _edge_graph(city), set(city.interior_edges())
    length = {e: city.net.lanes[city.net.edges[e].lanes[-1]].length for e in inner}
    route = [sorted(inner)[int(rng.integers(len(inner)))]]
    total = 0.0
    while total < EGO_ROUTE_M:
        options = [(e, d) for e, d in graph.get(route[-1], []) if e in inner]
        if not options:
            break
        p = np.array([TURN_P[d] for _, d in options])
        nxt = options[int(rng.choice(len(options), p=p / p.sum()))][0]
        route.append(nxt)
        total += length[nxt]
    return route


def scene_demand(
    city: City, rng: np.random.Generator, sim_seconds: float, ego_depart: float
) -> Demand:
    """The vehicles and pedestrians of one scene's simulation (all departing by sim_seconds)."""
    net = city.net
    inner, entries, exits = city.interior_edges(), city.entry_edges(), city.exit_edges()
    trips = []
    names = list(VEHICLE_TYPES)
    shares = np.array([VEHICLE_TYPES[n][3] for n in names])

    def vtype() -> str:
        name = names[int(rng.choice(len(names), p=shares / shares.sum()))]
        return f"{name}_rlr" if name != "bicycle" and rng.random() < RED_RUNNER_SHARE else name

    def road_lanes(edge: str) -> int:
        return sum(net.lanes[lane].kind == "road" for lane in net.edges[edge].lanes)

    k = 0
    for edge in inner:  # on the streets at the start
        length = net.lanes[net.edges[edge].lanes[-1]].length
        for _ in range(rng.poisson(length * road_lanes(edge) / FILL_SPACING_M)):
            trips.append(
                (
                    0.0,
                    f'<trip id="v{k}" type="{vtype()}" depart="0.00" from="{edge}" '
                    f'to="{exits[int(rng.integers(len(exits)))]}" departLane="random" '
                    'departPos="random_free" departSpeed="max"/>',
                )
            )
            k += 1
    for edge in entries:  # entering from the city's edge
        rate = FLOW_VEH_H_LANE * road_lanes(edge) / 3600.0
        t = rng.exponential(1 / rate)
        while t < sim_seconds:
            trips.append(
                (
                    t,
                    f'<trip id="v{k}" type="{vtype()}" depart="{t:.2f}" from="{edge}" '
                    f'to="{exits[int(rng.integers(len(exits)))]}" '
                    'departLane="best" departSpeed="max"/>',
                )
            )
            k += 1
            t += rng.exponential(1 / rate)
    route = ego_route(city, rng)
    trips.append(
        (
            ego_depart,
            f'<vehicle id="ego" type="car" depart="{ego_depart:.2f}" '
            'departLane="best" departPos="random_free" departSpeed="max">'
            f'<route edges="{" ".join(route)}"/></vehicle>',
        )
    )
    trips += _pedestrians(city, rng)
    trips.sort(key=lambda tr: tr[0])
    body = "\n".join(text for _, text in trips)
    return Demand(f"<routes>\n{vtypes_xml()}\n{body}\n</routes>\n", "ego", route, ego_depart)


def _pedestrians(city: City, rng: np.random.Generator) -> list[tuple[float, str]]:
    """People walking from a random sidewalk to another (SUMO routes them over crossings)."""
    net = city.net
    walks = [
        e
        for e in net.edges.values()
        if not e.function
        and any(net.lanes[lane].kind == "sidewalk" for lane in e.lanes)
        and e.from_node.startswith("n")
        and e.to_node.startswith("n")
    ]
    km = sum(net.lanes[e.lanes[0]].length for e in walks) / 1000.0
    out = []
    for k in range(rng.poisson(PEDESTRIANS_PER_KM * km)):
        a, b = walks[int(rng.integers(len(walks)))], walks[int(rng.integers(len(walks)))]
        pos = rng.uniform(0.0, net.lanes[a.lanes[0]].length)
        out.append(
            (
                0.0,
                f'<person id="p{k}" depart="0.00" departPos="{pos:.1f}">'
                f'<personTrip from="{a.id}" to="{b.id}"/></person>',
            )
        )
    return out


__all__ = ["DEMAND_SOURCES", "DRIVER", "Demand", "VEHICLE_TYPES", "scene_demand", "vtypes_xml"]
