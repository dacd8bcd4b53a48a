"""Measurements of the world's driver behaviour against the field values it cites, on a
controlled SUMO scenario: a queue of cars released by a signal turning green (the start-up lost
time and saturation headway of HCM 2010's signalised-intersection method).

The scenario: one 300 m single-lane approach to a signal (the same driver types as the city,
demand.py), red until RED_S while cars arrive and queue, then green; the stop-line crossing time
of each car's front bumper gives its discharge headway.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .demand import vtypes_xml

RED_S = 40.0
QUEUE = 12
STEP_S = 0.2  # as the city (traffic.STEP_S)


def _net(folder: Path) -> Path:
    import sumo

    (folder / "q.nod.xml").write_text(
        '<nodes><node id="a" x="0" y="0"/><node id="s" x="300" y="0" '
        'type="traffic_light"/><node id="b" x="500" y="0"/></nodes>'
    )
    (folder / "q.edg.xml").write_text(
        '<edges><edge id="in" from="a" to="s" numLanes="1" speed="13.89"/>'
        '<edge id="out" from="s" to="b" numLanes="1" speed="13.89"/></edges>'
    )
    (folder / "q.tll.xml").write_text(
        f'<tlLogics><tlLogic id="s" type="static" programID="0" offset="0">'
        f'<phase duration="{RED_S}" state="r"/><phase duration="200" state="G"/>'
        "</tlLogic></tlLogics>"
    )
    out = folder / "q.net.xml"
    subprocess.run(
        [
            str(Path(sumo.SUMO_HOME) / "bin" / "netconvert"),
            "-n",
            str(folder / "q.nod.xml"),
            "-e",
            str(folder / "q.edg.xml"),
            "--tllogic-files",
            str(folder / "q.tll.xml"),
            "-o",
            str(out),
            "--no-warnings",
        ],
        check=True,
        capture_output=True,
    )
    return out


def queue_discharge(seed: int = 0, vtype: str = "car") -> np.ndarray:
    """Discharge headways (s) of a queue of QUEUE cars at green onset: h[0] from green to the
    first car's front crossing the stop line, then between successive cars."""
    import libsumo as ls

    with tempfile.TemporaryDirectory(prefix="xmem-queue-") as tmp:
        folder = Path(tmp)
        net = _net(folder)
        cars = "\n".join(
            f'<vehicle id="c{k}" type="{vtype}" depart="{k * 2.0:.1f}" departSpeed="max">'
            '<route edges="in out"/></vehicle>'
            for k in range(QUEUE)
        )
        (folder / "q.rou.xml").write_text(f"<routes>{vtypes_xml()}\n{cars}</routes>")
        ls.start(
            [
                "sumo",
                "-n",
                str(net),
                "-r",
                str(folder / "q.rou.xml"),
                "--step-length",
                str(STEP_S),
                "--seed",
                str(seed),
                "--no-step-log",
                "--no-warnings",
            ]
        )
        try:
            crossed: dict[str, float] = {}
            while len(crossed) < QUEUE and ls.simulation.getTime() < RED_S + 120:
                ls.simulationStep()
                for v in ls.vehicle.getIDList():
                    if v not in crossed and not ls.vehicle.getRoadID(v) == "in":
                        crossed[v] = ls.simulation.getTime() - STEP_S / 2
        finally:
            ls.close()
    times = np.array([crossed[f"c{k}"] for k in range(QUEUE)])
    return np.diff(np.concatenate([[RED_S], times]))


def start_up_lost_time(headways: np.ndarray) -> tuple[float, float]:
    """(start-up lost time, saturation headway) by HCM 2010: the saturation headway is the mean
    from the fifth car on; the lost time is the first four headways' excess over it."""
    saturation = float(np.mean(headways[4:]))
    return float(np.sum(headways[:4] - saturation)), saturation


def red_light_running(city, demand, seed: int, seconds: float) -> dict:
    """Stop-line crossings at the city's signals over a whole-city simulation of `seconds`
    after the demand's warm-up: {"crossings", "on_red", "per_hour_per_signal"} (a crossing: a
    vehicle's front entering a junction from a signalised lane; on red: its link red then)."""
    import libsumo as ls
    from libsumo import constants as tc

    from .traffic import SUMO_OPTIONS, WARMUP_S

    link_of = {(c.from_lane, c.via): (c.tl, c.link_index) for c in city.net.connections if c.tl}
    with tempfile.TemporaryDirectory(prefix="xmem-rlr-") as tmp:
        routes = Path(tmp) / "r.rou.xml"
        routes.write_text(demand.routes_xml)
        ls.start(
            [
                "sumo",
                "-n",
                str(city.net_path),
                "-r",
                str(routes),
                "--seed",
                str(seed),
                *SUMO_OPTIONS,
            ]
        )
        try:
            lanes: dict[str, str] = {}
            crossings = red = 0
            while ls.simulation.getTime() < WARMUP_S + seconds:
                ls.simulationStep()
                for v in ls.simulation.getDepartedIDList():
                    ls.vehicle.subscribe(v, [tc.VAR_LANE_ID])
                now = {
                    v: r[tc.VAR_LANE_ID] for v, r in ls.vehicle.getAllSubscriptionResults().items()
                }
                if ls.simulation.getTime() > WARMUP_S:
                    for v, lane in now.items():
                        link = link_of.get((lanes.get(v, ""), lane))
                        if link is not None:
                            crossings += 1
                            red += ls.trafficlight.getRedYellowGreenState(link[0])[link[1]] in "ru"
                lanes = now
        finally:
            ls.close()
    return {
        "crossings": crossings,
        "on_red": red,
        "per_hour_per_signal": red / (seconds / 3600.0) / max(len(city.net.programs), 1),
    }


__all__ = ["queue_discharge", "red_light_running", "start_up_lost_time"]
