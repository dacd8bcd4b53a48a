"""The nuScenes tables as the synthetic writer fills them: the fixed category, attribute and
visibility records, real scene names of the challenge splits, a table set with its own token
generator, prev/next links, and JPEG encoding."""

from __future__ import annotations

import io

import numpy as np
from nuscenes.utils.splits import create_splits_scenes
from PIL import Image

from ..data.tables import TABLES

CATEGORIES = [
    "human.pedestrian.adult",
    "human.pedestrian.child",
    "human.pedestrian.wheelchair",
    "human.pedestrian.stroller",
    "human.pedestrian.personal_mobility",
    "human.pedestrian.police_officer",
    "human.pedestrian.construction_worker",
    "animal",
    "vehicle.car",
    "vehicle.motorcycle",
    "vehicle.bicycle",
    "vehicle.bus.bendy",
    "vehicle.bus.rigid",
    "vehicle.truck",
    "vehicle.construction",
    "vehicle.emergency.ambulance",
    "vehicle.emergency.police",
    "vehicle.trailer",
    "movable_object.barrier",
    "movable_object.trafficcone",
    "movable_object.pushable_pullable",
    "movable_object.debris",
    "static_object.bicycle_rack",
]
ATTRIBUTES = [
    "vehicle.moving",
    "vehicle.stopped",
    "vehicle.parked",
    "cycle.with_rider",
    "cycle.without_rider",
    "pedestrian.sitting_lying_down",
    "pedestrian.standing",
    "pedestrian.moving",
]
VISIBILITY = [("1", "v0-40"), ("2", "v40-60"), ("3", "v60-80"), ("4", "v80-100")]


def scene_names(n: int) -> tuple[str, dict[str, list[str]]]:
    """Real scene names for n scenes, so that the devkit's split functions work →
    (version, {split: names}). Up to 10: v1.0-mini (mini_train, mini_val); more: v1.0-trainval
    with a fifth for val, a fifth for train_val and the rest for train."""
    if n <= 10:
        n_val = max(1, int(round(n * 0.2))) if n > 1 else 0
        splits = create_splits_scenes()
        return "v1.0-mini", {
            "mini_train": splits["mini_train"][: n - n_val],
            "mini_val": splits["mini_val"][:n_val],
        }
    n_val = n_tv = max(1, int(round(n * 0.2)))
    return challenge_scene_names(n - n_val - n_tv, n_tv, n_val)


def challenge_scene_names(train: int, train_val: int, val: int) -> tuple[str, dict[str, list[str]]]:
    """v1.0-trainval names of the prediction challenge's splits: train = official
    train[200:], train_val = official train[:200], val = official val."""
    splits = create_splits_scenes()
    if train > 500 or train_val > 200 or val > 150:
        raise ValueError("at most 500 train, 200 train_val and 150 val scenes (the challenge's)")
    return "v1.0-trainval", {
        "train": splits["train"][200 : 200 + train],
        "train_val": splits["train"][:train_val],
        "val": splits["val"][:val],
    }


class Tables:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.t: dict[str, list[dict]] = {name: [] for name in TABLES}

    def token(self) -> str:
        return self.rng.bytes(16).hex()

    def add(self, table: str, **record) -> dict:
        record = {"token": record.pop("token", None) or self.token(), **record}
        self.t[table].append(record)
        return record


def link(records: list[dict]) -> None:
    for a, b in zip(records, records[1:]):
        a["next"], b["prev"] = b["token"], a["token"]


def jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def attribute(tr, state) -> str:
    if tr.category.startswith("human.pedestrian"):
        return "pedestrian.moving" if state["speed"] > 0.3 else "pedestrian.standing"
    if tr.category == "vehicle.bicycle":
        return "cycle.with_rider"
    if tr.parked:
        return "vehicle.parked"
    return "vehicle.moving" if state["speed"] > 0.5 else "vehicle.stopped"


__all__ = [
    "ATTRIBUTES",
    "CATEGORIES",
    "Tables",
    "VISIBILITY",
    "attribute",
    "challenge_scene_names",
    "jpeg",
    "link",
    "scene_names",
]
