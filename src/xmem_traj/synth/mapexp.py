"""The map expansion of the synthetic world: maps/expansion/<location>.json as the devkit's
NuScenesMap loads it (version "1.3", all 17 layers), with the drivable area of every scene's
road and side streets, so that OffRoadRate and compute_metrics run unmodified.

Facts from nuscenes-devkit 1.2.0 (map_expansion/map_api.py, eval/prediction/metrics.py):
every location's file must exist (load_all_maps opens all four), `version` is compared as a
string, and OffRoadRate rasterises drivable_area at 10 px/m over a canvas whose size is fixed
per location (MAP_EXTENTS) with the origin at its south-west corner: anything outside it, or
at negative coordinates, counts as off-road. Scenes are therefore placed inside it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
from shapely.geometry import LineString, MultiPolygon, Polygon
from shapely.ops import unary_union

from .roads import KERB, STREET_HALF_WIDTH

#: Canvas (width, height) in metres per location, as NuScenesMap.get_map_mask hard-codes it.
MAP_EXTENTS = {
    "singapore-onenorth": (1585.6, 2025.0),
    "singapore-hollandvillage": (2808.3, 2922.9),
    "singapore-queenstown": (3228.6, 3687.1),
    "boston-seaport": (2979.5, 2118.1),
}
LOCATION = "boston-seaport"   # every synthetic log drives here
CORNER_RADIUS = 5.0           # intersections' corners are rounded (what turning paths cross)
LAYERS = ("polygon", "line", "node", "drivable_area", "road_segment", "road_block", "lane",
          "ped_crossing", "walkway", "stop_line", "carpark_area", "road_divider", "lane_divider",
          "traffic_light", "lane_connector")


def drivable_area(road_xy: np.ndarray, streets: Sequence[np.ndarray]):
    """A scene's drivable surface: the road to its kerbs (lanes and parking strip) and the side
    streets, corners rounded; a shapely (Multi)Polygon in global metres."""
    parts = [LineString(road_xy).buffer(KERB, cap_style="flat")]
    parts += [LineString(s).buffer(STREET_HALF_WIDTH, cap_style="flat") for s in streets if len(s) > 1]
    area = unary_union(parts)
    return area.buffer(CORNER_RADIUS).buffer(-CORNER_RADIUS).simplify(0.1)


def _polygons(geometry) -> list[Polygon]:
    if isinstance(geometry, Polygon):
        return [geometry]
    if isinstance(geometry, MultiPolygon):
        return list(geometry.geoms)
    return []


def expansion_json(areas: Sequence) -> dict:
    """The expansion table of one location holding these drivable areas (one record each)."""
    table: dict = {"version": "1.3", "canvas_edge": list(MAP_EXTENTS[LOCATION]),
                   **{layer: [] for layer in LAYERS}, "arcline_path_3": {}, "connectivity": {}}
    counter = iter(range(10**9))

    def token(kind: str) -> str:
        return f"{kind}-{next(counter):08d}"

    def ring(coords) -> list[str]:
        tokens = []
        for x, y in list(coords)[:-1]:  # shapely closes rings; the devkit does not need it
            tokens.append(token("node"))
            table["node"].append({"token": tokens[-1], "x": round(float(x), 3), "y": round(float(y), 3)})
        return tokens
    for area in areas:
        polygon_tokens = []
        for poly in _polygons(area):
            rec = {"token": token("polygon"), "exterior_node_tokens": ring(poly.exterior.coords),
                   "holes": [{"node_tokens": ring(h.coords)} for h in poly.interiors]}
            table["polygon"].append(rec)
            polygon_tokens.append(rec["token"])
        if polygon_tokens:
            table["drivable_area"].append({"token": token("drivable_area"), "polygon_tokens": polygon_tokens})
    return table


def write_expansion(dataroot: Path, areas: Sequence) -> None:
    """maps/expansion/<location>.json for all four locations (the others empty)."""
    folder = Path(dataroot) / "maps" / "expansion"
    folder.mkdir(parents=True, exist_ok=True)
    for location, extent in MAP_EXTENTS.items():
        table = expansion_json(areas if location == LOCATION else [])
        table["canvas_edge"] = list(extent)
        (folder / f"{location}.json").write_text(json.dumps(table, separators=(",", ":")))


__all__ = ["LOCATION", "MAP_EXTENTS", "drivable_area", "expansion_json", "write_expansion"]
