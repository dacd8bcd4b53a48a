"""Keeping predicted modes on the road (eval/road_snap.py): what moves, how far, what stays."""

import numpy as np
import pytest

from xmem_traj.data.maps import PIXELS_PER_METER, DrivableMaps
from xmem_traj.eval.offroad import off_road_rate
from xmem_traj.eval.road_snap import SNAP_MARGIN_M, RoadSnap


@pytest.fixture
def road() -> DrivableMaps:
    """A 40 m × 40 m canvas with one straight road: y in [15, 25) m, every x."""
    mask = np.zeros((400, 400), np.uint8)
    mask[150:250] = 1
    return DrivableMaps({"town": mask})


def straight(y_end: float, t: int = 12) -> np.ndarray:
    """A mode along x from (2, 20) whose y drifts linearly to y_end (T, 2)."""
    x = np.linspace(2.0, 35.0, t)
    return np.stack([x, np.linspace(20.0, y_end, t)], 1)


def test_near_misses_move_onto_the_road(road):
    drift = straight(26.5)  # leaves the road by 1.5 m at the end
    on = straight(20.0)
    pred = np.stack([drift, on])[None]  # (1, 2, 12, 2)
    snap = RoadSnap(road, ["town"], np.array([[2.0, 20.0]]), radius_m=8.0)
    out = snap(pred)
    assert off_road_rate(pred, ["town"], road.masks)[0] == 0.5
    assert off_road_rate(out, ["town"], road.masks)[0] == 0.0  # the devkit's spline too
    moved = ~np.all(out == pred, axis=-1)[0]  # (K, T)
    assert moved[0].any() and not moved[1].any()  # only the off-road mode's points
    assert np.array_equal(moved[0], ~road.drivable("town", drift))  # exactly its off points
    y = out[0, 0, moved[0], 1]
    assert np.all(y <= 25.0 - SNAP_MARGIN_M + 0.05) and np.all(y >= 24.0)  # nearest, inside
    assert np.allclose(out[0, 0, moved[0], 0], pred[0, 0, moved[0], 0], atol=0.06)
    assert snap.moved == int(moved.sum())
    assert np.all(pred[0, 0] == drift)  # the input is left as it was


def test_far_points_and_agents_off_the_road_stay(road):
    far = straight(39.0)  # ends 14 m off the road: its last points are beyond the radius
    pred = far[None, None]
    out = RoadSnap(road, ["town"], np.array([[2.0, 20.0]]), radius_m=4.0)(pred)
    landing = 25.0 - SNAP_MARGIN_M  # the radius reaches the landing point, margin included
    y = pred[0, 0, :, 1]
    beyond = y > landing + 4.0 + 0.1
    assert beyond.any() and np.all(out[0, 0, beyond] == pred[0, 0, beyond])
    near = (y >= 25.0) & (y < landing + 4.0 - 0.1)
    assert near.any() and np.all(out[0, 0, near, 1] < 25.0)
    # an agent in a car park the map leaves out: its modes are not the map's to correct
    parked = RoadSnap(road, ["town"], np.array([[2.0, 30.0]]), radius_m=8.0)
    assert np.array_equal(parked(pred), pred)


def test_every_target_reads_its_own_map_and_position(road):
    other = DrivableMaps({"town": road.masks["town"], "field": np.zeros((400, 400), np.uint8)})
    pred = np.stack([straight(26.5)[None], straight(26.5)[None]]).astype(np.float32)
    out = RoadSnap(other, ["town", "field"], np.array([[2, 20], [2, 20]]), radius_m=8.0)(pred)
    assert not np.array_equal(out[0], pred[0])  # on its road
    assert np.array_equal(out[1], pred[1])  # nothing drivable there: left as predicted
    assert out.dtype == np.float32  # (what predict hands it)
    assert off_road_rate(out[:1], ["town"], road.masks)[0] == 0.0


def test_the_canvas_edges(road):
    """Points off the canvas count as off the road (as in OffRoadRate); a road that runs to the
    canvas's edge is eroded from that edge too."""
    edge = np.zeros((400, 400), np.uint8)
    edge[:, :100] = 1  # a road along the canvas's left edge: x in [0, 10) m
    maps = DrivableMaps({"town": edge})
    points = np.array([[-1.0, 5.02], [5.02, 41.0], [-20.0, 5.0], [5.0, 1e6], [12.0, 20.02]])
    out = RoadSnap(maps, ["town"], np.array([[5.0, 20.0]]), radius_m=8.0)(points[None, None])[0, 0]
    assert np.allclose(out[0], [0.55, 5.05])  # onto the canvas, 0.5 m inside its edge
    assert np.allclose(out[1], [5.05, 39.45])
    assert np.array_equal(out[2:4], points[2:4])  # beyond the radius: left
    assert np.allclose(out[4], [9.45, 20.05])  # back over the road's right kerb


def test_a_radius_must_be_positive(road):
    with pytest.raises(ValueError, match="radius_m"):
        RoadSnap(road, ["town"], np.zeros((1, 2)), radius_m=0.0)
    snap = RoadSnap(road, ["town"], np.zeros((1, 2)), radius_m=1.0)
    with pytest.raises(ValueError, match="2 predictions for 1 targets"):
        snap(np.zeros((2, 1, 12, 2)))


def test_pixels_per_meter_is_the_devkits():
    assert PIXELS_PER_METER == 10  # (the devkit's OffRoadRate rasterises at 10 px/m)
