"""Signal timing to measured practice: netconvert's fixed-time programs (phase order and which
links go together) retimed per junction — cycle length, yellow change and red clearance
intervals by the ITE formulas within the MUTCD limits, a random offset. SIGNAL_SOURCES says
where each value comes from. (Start-up lost time is the drivers', demand.py.)
"""

from __future__ import annotations

import numpy as np

from .netxml import RoadNet

CYCLE_S = (60.0, 120.0)  # urban fixed-time cycles
YELLOW_S = (3.0, 6.0)  # MUTCD limits of the yellow change interval
ALL_RED_S = (1.0, 2.0)  # typical red clearance
PERCEPTION_REACTION_S = 1.0  # ITE kinematic formula: t
COMFORT_DECEL = 3.05  # ITE: a = 10 ft/s²
CLEARING_LENGTH_M = 6.1  # ITE: L = 20 ft, the vehicle that has to clear the junction
MIN_GREEN_S = 7.0
SIGNAL_SOURCES = {
    "cycle length": "FHWA Signal Timing Manual, 2nd ed. (NCHRP Report 812, 2015): urban "
    "fixed-time cycles typically 60–120 s",
    "yellow change interval": "MUTCD 2009 §4D.26 (3 s minimum, 6 s maximum); ITE 'Guidelines "
    "for Determining Traffic Signal Change and Clearance Intervals' "
    "(2020): Y = t + v / (2a), t = 1 s, a = 10 ft/s²",
    "red clearance interval": "ITE (2020): R = (W + L) / v, L = 20 ft; MUTCD 2009 §4D.26 (at "
    "most 6 s); 1–2 s typical (FHWA Signal Timing Manual)",
    "minimum green": "FHWA Signal Timing Manual, 2nd ed., table 5-3 (7 s or more)",
    "phase order": "SUMO netconvert 1.28 static programs (opposite approaches together, "
    "permissive left turns, pedestrian walk with the parallel through movement)",
}


def yellow_interval(speed: float) -> float:
    """ITE yellow change interval (s) for an approach speed (m/s), within the MUTCD limits."""
    return float(np.clip(PERCEPTION_REACTION_S + speed / (2 * COMFORT_DECEL), *YELLOW_S))


def red_clearance(width: float, speed: float) -> float:
    """ITE red clearance interval (s) for a junction `width` m crossed at `speed` m/s."""
    return float(np.clip((width + CLEARING_LENGTH_M) / max(speed, 1.0), *ALL_RED_S))


def _links(net: RoadNet, tls: str) -> dict[int, list[tuple[float, float]]]:
    """Per link index of a signal: (approach speed m/s, path length across the junction m)."""
    out: dict[int, list[tuple[float, float]]] = {}
    for c in net.connections:
        if c.tl == tls and c.link_index >= 0 and c.from_lane in net.lanes:
            via = net.lanes.get(c.via)
            out.setdefault(c.link_index, []).append(
                (net.lanes[c.from_lane].speed, via.length if via is not None else 10.0)
            )
    return out


def _retime(phases: list[tuple[float, str]], links: dict, cycle: float) -> list[tuple[float, str]]:
    """New durations for one program's phases: yellows and all-reds by the formulas, the
    pedestrian clearance phases (a green phase right after another) as they were, the rest of
    the cycle shared by the main greens in proportion to the links they serve."""
    durations: list[float | None] = []
    last_yellow: set[int] = set()
    for k, (duration, state) in enumerate(phases):
        if "y" in state:
            last_yellow = {i for i, ch in enumerate(state) if ch == "y" and i in links}
            speeds = [v for i in last_yellow for v, _ in links[i]]
            durations.append(max((yellow_interval(v) for v in speeds), default=YELLOW_S[0]))
        elif set(state) <= {"r", "s"}:
            widths = [red_clearance(w, v) for i in last_yellow for v, w in links[i]]
            durations.append(max(widths, default=ALL_RED_S[0]))
        elif k > 0 and "y" not in phases[k - 1][1] and not set(phases[k - 1][1]) <= {"r", "s"}:
            durations.append(duration)  # pedestrian clearance after a green
        else:
            durations.append(None)  # a main green
    weights = np.array(
        [state.count("G") + 1 for (_, state), d in zip(phases, durations) if d is None], float
    )
    fixed = sum(d for d in durations if d is not None)
    cycle = max(cycle, fixed + MIN_GREEN_S * len(weights))
    greens = iter((cycle - fixed) * weights / weights.sum())
    return [
        (round(d if d is not None else float(next(greens)), 1), state)
        for d, (_, state) in zip(durations, phases)
    ]


def retime_programs(net: RoadNet, rng: np.random.Generator) -> str:
    """Every signal of the network retimed (see the module's doc) → a SUMO tllogic file."""
    out = ["<tlLogics>"]
    for tls in sorted(net.programs):
        program = net.programs[tls]
        cycle = float(np.round(rng.uniform(*CYCLE_S) / 5.0) * 5.0)
        phases = _retime(program.phases, _links(net, tls), cycle)
        offset = round(float(rng.uniform(0, sum(d for d, _ in phases))), 1)
        out.append(f'  <tlLogic id="{tls}" type="static" programID="0" offset="{offset}">')
        out += [f'    <phase duration="{d}" state="{s}"/>' for d, s in phases]
        out.append("  </tlLogic>")
    out.append("</tlLogics>")
    return "\n".join(out) + "\n"


__all__ = ["SIGNAL_SOURCES", "red_clearance", "retime_programs", "yellow_interval"]
