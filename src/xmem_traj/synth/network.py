"""The synthetic city's road network, built for SUMO: an irregular grid of streets (60–150 m
blocks, 1–3 lanes per direction, 25–50 km/h), signalised and unsignalised junctions, sidewalks
and pedestrian crossings, written as plain XML and compiled by SUMO's netconvert; its signal
programs are then retimed to measured practice (signals.py).

Every scene of a dataset drives in this one city (as nuScenes scenes share their location's
map); the map expansion is made from it (mapexp.py). Streets on the city's edge continue as
150 m stubs where traffic enters and leaves, far from any ego (ego routes stay inside).
NETWORK_SOURCES says where each design value comes from.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .netxml import RoadNet, read_net
from .signals import retime_programs

log = logging.getLogger(__name__)

ORIGIN = (300.0, 300.0)  # the city's south-west junction on the map canvas (m)
GRID = (7, 6)  # junction columns × rows of the default city
BLOCK_M = (60.0, 150.0)  # block lengths (issue 19: nuScenes-like city blocks)
LANES_P = {1: 0.5, 2: 0.35, 3: 0.15}  # lanes per direction of a street (assumed mix)
SPEEDS_KMH = {1: (25, 30, 40), 2: (40, 50), 3: (40, 50)}  # speed limits by lanes per direction
LANE_WIDTH = 3.2  # m
SIDEWALK_WIDTH = 2.0  # m
KERB_RADIUS = 8.0  # m, junction corners
STUB_M = 150.0  # entry/exit stubs beyond the city's edge
JITTER_M = 2.5  # junctions off the perfect grid (sd, m)
DROP_P = 0.1  # share of single-lane street segments left out (T-junctions)
#: Junction control by the lanes of the two crossing streets (a simplification of the MUTCD
#: signal warrants: volume grows with lanes): (major ≥ 2, minor ≥ 2), (≥ 2, 1), (1, 1).
CONTROL_P = {
    "both multi-lane": {"traffic_light": 1.0},
    "one multi-lane": {"traffic_light": 0.7, "priority_stop": 0.3},
    "local": {"traffic_light": 0.25, "allway_stop": 0.35, "priority_stop": 0.2, "priority": 0.2},
}
NETWORK_SOURCES = {
    "block length": "issue 19 (60–150 m, as nuScenes' Boston and Singapore districts)",
    "lanes per direction, speed limits": "issue 19 (1–3 lanes, 25–50 km/h); 25 mph (40 km/h) "
    "is Boston's default limit, 40–50 km/h Singapore's "
    "urban roads",
    "lane width": "AASHTO Green Book, urban lanes 10–12 ft (3.0–3.6 m)",
    "sidewalk width": "PROWAG R302.3 / ADA, 5 ft (1.5 m) minimum",
    "kerb radius": "AASHTO Green Book, urban kerb radii 15–40 ft (4.5–12 m)",
    "junction control": "MUTCD ch. 4C signal warrants (volume) simplified to lanes; all-way "
    "and two-way stops and yields on local streets (MUTCD ch. 2B)",
}


@dataclass(frozen=True)
class City:
    """A built network: its file (for SUMO) and its parsed geometry."""

    net_path: Path
    net: RoadNet

    def interior_edges(self) -> list[str]:
        """Road edges between two city junctions (not the entry/exit stubs)."""
        return [
            e.id
            for e in self.net.edges.values()
            if not e.function and e.from_node.startswith("n") and e.to_node.startswith("n")
        ]

    def entry_edges(self) -> list[str]:
        return [
            e.id for e in self.net.edges.values() if not e.function and e.from_node.startswith("f")
        ]

    def exit_edges(self) -> list[str]:
        return [
            e.id for e in self.net.edges.values() if not e.function and e.to_node.startswith("f")
        ]


def _choice(rng: np.random.Generator, table: dict):
    keys = list(table)
    return keys[int(rng.choice(len(keys), p=np.array(list(table.values()), float)))]


def _layout(rng: np.random.Generator, grid: tuple[int, int]):
    """Junction positions, the lanes and speed of every column and row street, and the
    single-lane segments left out → (xs, ys, col, row, dropped)."""
    nx, ny = grid
    xs = ORIGIN[0] + np.concatenate([[0.0], np.cumsum(rng.uniform(*BLOCK_M, nx - 1))])
    ys = ORIGIN[1] + np.concatenate([[0.0], np.cumsum(rng.uniform(*BLOCK_M, ny - 1))])
    col = [(_choice(rng, LANES_P),) for _ in range(nx)]
    row = [(_choice(rng, LANES_P),) for _ in range(ny)]
    col = [(n, float(rng.choice(SPEEDS_KMH[n])) / 3.6) for (n,) in col]
    row = [(n, float(rng.choice(SPEEDS_KMH[n])) / 3.6) for (n,) in row]
    degree = {
        (i, j): (i > 0)
        + (i < nx - 1)
        + (j > 0)
        + (j < ny - 1)
        + (i in (0, nx - 1))
        + (j in (0, ny - 1))
        for i in range(nx)
        for j in range(ny)
    }
    dropped = set()
    segments = [((i, j), (i, j + 1), col[i]) for i in range(1, nx - 1) for j in range(ny - 1)]
    segments += [((i, j), (i + 1, j), row[j]) for j in range(1, ny - 1) for i in range(nx - 1)]
    for a, b, (lanes, _) in segments:
        if lanes == 1 and rng.random() < DROP_P and degree[a] > 3 and degree[b] > 3:
            dropped.add((a, b))
            degree[a] -= 1
            degree[b] -= 1
    return xs, ys, col, row, dropped


def _control(rng, lanes_a: int, lanes_b: int) -> str:
    multi = (lanes_a >= 2) + (lanes_b >= 2)
    key = "both multi-lane" if multi == 2 else "one multi-lane" if multi == 1 else "local"
    return _choice(rng, CONTROL_P[key])


def _plain_xml(rng: np.random.Generator, grid: tuple[int, int]) -> tuple[str, str]:
    """The nodes and edges files of the city (SUMO plain XML)."""
    nx, ny = grid
    xs, ys, col, row, dropped = _layout(rng, grid)
    nodes, edges = [], []

    def street(a: str, b: str, lanes: int, speed: float) -> None:
        for u, v in ((a, b), (b, a)):
            edges.append(
                f'<edge id="{u}_{v}" from="{u}" to="{v}" numLanes="{lanes}" '
                f'speed="{speed:.3f}" priority="{lanes}"/>'
            )

    for i in range(nx):
        for j in range(ny):
            x, y = xs[i] + rng.normal(0, JITTER_M), ys[j] + rng.normal(0, JITTER_M)
            nodes.append(
                f'<node id="n{i}_{j}" x="{x:.2f}" y="{y:.2f}" '
                f'type="{_control(rng, col[i][0], row[j][0])}"/>'
            )
    for i in range(nx):
        for j in range(ny - 1):
            if ((i, j), (i, j + 1)) not in dropped:
                street(f"n{i}_{j}", f"n{i}_{j + 1}", *col[i])
    for j in range(ny):
        for i in range(nx - 1):
            if ((i, j), (i + 1, j)) not in dropped:
                street(f"n{i}_{j}", f"n{i + 1}_{j}", *row[j])
    stubs = [(i, 0, 0, -1, col[i]) for i in range(nx)] + [
        (i, ny - 1, 0, 1, col[i]) for i in range(nx)
    ]
    stubs += [(0, j, -1, 0, row[j]) for j in range(ny)] + [
        (nx - 1, j, 1, 0, row[j]) for j in range(ny)
    ]
    for k, (i, j, dx, dy, (lanes, speed)) in enumerate(stubs):
        nodes.append(
            f'<node id="f{k}" x="{xs[i] + dx * STUB_M:.2f}" y="{ys[j] + dy * STUB_M:.2f}" '
            'type="priority"/>'
        )
        street(f"n{i}_{j}", f"f{k}", lanes, speed)
    return (
        "<nodes>\n" + "\n".join(nodes) + "\n</nodes>\n",
        "<edges>\n" + "\n".join(edges) + "\n</edges>\n",
    )


def _netconvert(args: list[str]) -> None:
    import sumo

    cmd = [str(Path(sumo.SUMO_HOME) / "bin" / "netconvert"), *args, "--no-warnings"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"netconvert failed: {out.stderr[-2000:]}")


def build_city(folder: str | Path, seed: int, grid: tuple[int, int] = GRID) -> City:
    """Build the city of dataset `seed` in `folder` (its plain XML, the compiled network with
    retimed signals) → City. Same seed → same network."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 777])
    nodes, edges = _plain_xml(rng, grid)
    (folder / "city.nod.xml").write_text(nodes)
    (folder / "city.edg.xml").write_text(edges)
    raw = folder / "raw.net.xml"
    options = (
        "--offset.disable-normalization --no-turnarounds --sidewalks.guess --crossings.guess "
        f"--default.lanewidth {LANE_WIDTH} --default.sidewalk-width {SIDEWALK_WIDTH} "
        f"--default.junctions.radius {KERB_RADIUS} --junctions.corner-detail 5 "
        f"--tls.default-type static --tls.allred.time 2 --seed {seed}"
    ).split()
    nod, edg = str(folder / "city.nod.xml"), str(folder / "city.edg.xml")
    _netconvert(["-n", nod, "-e", edg, "-o", str(raw), *options])
    programs = retime_programs(read_net(raw), np.random.default_rng([seed, 778]))
    (folder / "programs.tll.xml").write_text(programs)
    net_path = folder / "city.net.xml"
    _netconvert(
        [
            "-s",
            str(raw),
            "--tllogic-files",
            str(folder / "programs.tll.xml"),
            "-o",
            str(net_path),
            "--offset.disable-normalization",
        ]
    )
    net = read_net(net_path)
    log.info(
        "city of seed %d: %d junctions (%d signalised), %d road lanes",
        seed,
        sum(j.type not in ("internal", "dead_end") for j in net.junctions.values()),
        len(net.programs),
        len(net.road_lanes()),
    )
    return City(net_path, net)


__all__ = ["City", "GRID", "NETWORK_SOURCES", "build_city"]
