"""The map expansion made from the SUMO network, read by the devkit itself on a generated
dataroot: NuScenesMap and its layers, its lane discretisation (arcline_path_3), the prediction
StaticLayerRasterizer with its default layers (it loads all four locations' files) and
OffRoadRate. The devkit is never patched."""

from __future__ import annotations

import json

import numpy as np
import pytest
from nuscenes.eval.prediction.data_classes import Prediction
from nuscenes.eval.prediction.metrics import OffRoadRate, RowMean
from nuscenes.eval.prediction.splits import get_prediction_challenge_split
from nuscenes.map_expansion.map_api import NuScenesMap, locations
from nuscenes.prediction import PredictHelper
from nuscenes.prediction.input_representation.static_layers import StaticLayerRasterizer

from xmem_traj.synth.mapexp import LOCATION


@pytest.fixture(scope="module")
def city_map(synth_root) -> NuScenesMap:
    return NuScenesMap(str(synth_root), LOCATION)


def test_every_location_loads_and_the_city_has_every_layer(synth_root, city_map):
    for name in locations:
        NuScenesMap(str(synth_root), name)
    for layer in (
        "drivable_area",
        "road_segment",
        "road_block",
        "lane",
        "lane_connector",
        "ped_crossing",
        "walkway",
        "stop_line",
        "traffic_light",
        "road_divider",
        "lane_divider",
    ):
        assert getattr(city_map, layer), layer
    assert {r["is_intersection"] for r in city_map.road_segment} == {True, False}
    signal_lines = [r for r in city_map.stop_line if r["stop_line_type"] == "TRAFFIC_LIGHT"]
    assert signal_lines and all(r["cue"] and r["road_block_token"] for r in signal_lines)
    assert {r["stop_line_type"] for r in city_map.stop_line} > {"TRAFFIC_LIGHT"}
    for lc in city_map.lane_connector:
        assert city_map.get_incoming_lane_ids(lc["token"]) and city_map.get_outgoing_lane_ids(
            lc["token"]
        )
    for light in city_map.traffic_light:
        assert {item["color"] for item in light["items"]} == {"RED", "YELLOW", "GREEN"}


def test_lane_discretisation_follows_the_vehicles(nusc, city_map):
    """Vehicles drive SUMO's lanes: a moving car's box centre lies on the devkit's discretised
    centreline of its closest lane (the lane's own geometry, no tolerance for a made-up one)."""
    near, total = 0, 0
    for ann in nusc.sample_annotation[::8]:  # ~200 cars (the devkit's lane search is slow)
        if ann["category_name"] != "vehicle.car":
            continue
        x, y = ann["translation"][:2]
        lane = city_map.get_closest_lane(x, y, radius=3.0)
        total += 1
        if lane:
            poses = np.array(city_map.discretize_lanes([lane], 0.5)[lane])
            near += np.hypot(poses[:, 0] - x, poses[:, 1] - y).min() < 1.0
    assert total > 100 and near >= 0.9 * total


def test_static_layer_rasterizer_draws_the_city(synth_root, nusc):
    helper = PredictHelper(nusc)
    static = StaticLayerRasterizer(helper)  # loads all four locations
    tokens = get_prediction_challenge_split("mini_train", dataroot=str(synth_root))[:4]
    assert tokens
    for token in tokens:
        instance, sample = token.split("_")
        image = static.make_representation(instance, sample)
        assert image.shape == (500, 500, 3) and image.dtype == np.uint8
        drivable = (image == (255, 255, 255)).all(-1).mean()
        lanes = (image.max(-1) > 0) & ~(image == image[..., :1]).all(-1)  # coloured lane lines
        assert drivable > 0.05 and lanes.mean() > 0.001


def test_offroad_rate_of_the_ground_truth_is_zero(synth_root, nusc):
    """OffRoadRate (the devkit's, 10 px/m over the location's canvas) finds every true future on
    the drivable area made from the network."""
    helper = PredictHelper(nusc)
    metric = OffRoadRate(helper, [RowMean()])
    split = json.loads((synth_root / "maps" / "prediction" / "prediction_scenes.json").read_text())
    tokens = [t for scene in split.values() for t in scene][::2]
    rates = []
    for token in tokens:
        instance, sample = token.split("_")
        future = helper.get_future_for_agent(instance, sample, 6, in_agent_frame=False)
        rates.append(metric(None, Prediction(instance, sample, future[None], np.ones(1)))[0])
    assert len(rates) >= 20 and max(rates) == 0.0
