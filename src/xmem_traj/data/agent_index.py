"""Agent-centric targets from nuScenes through the official devkit (nuScenes → records).

One AgentRecord per target (instance, sample): the camera where the agent's clipped projected
box is largest at the target sample, the past window of that camera (key frames or every
camera frame), where the agent first shows up in it and its 2-D hull there, and the past and
future tracks straight from PredictHelper. Built once; the Dataset then only reads files.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from nuscenes.eval.prediction.splits import get_prediction_challenge_split
from nuscenes.nuscenes import NuScenes
from nuscenes.prediction import PredictHelper
from nuscenes.utils.data_classes import Box
from nuscenes.utils.splits import create_splits_scenes
from pyquaternion import Quaternion

from ..errors import DatasetError
from ..projection import box_to_camera, projected_hull
from .records import CAMERA_HZ, AgentRecord, steps
from .tables import check_dataroot, load_nuscenes

log = logging.getLogger(__name__)

CHALLENGE_SPLITS = ("mini_train", "mini_val", "train", "train_val", "val")


def prediction_scenes_path(dataroot: str | os.PathLike) -> Path:
    return Path(dataroot) / "maps" / "prediction" / "prediction_scenes.json"


def challenge_targets(dataroot: str | os.PathLike, split: str) -> list[tuple[str, str]]:
    path = prediction_scenes_path(dataroot)
    if not path.exists():
        raise DatasetError(
            f"the prediction challenge split needs {path}; it ships with the nuScenes map "
            "expansion pack (nuScenes-map-expansion-v1.3), whose maps/ folder goes into the "
            "dataroot. Or pass challenge=False (--no-challenge) to use every agent of the split."
        )
    if split not in CHALLENGE_SPLITS:
        raise DatasetError(f"challenge split must be one of {CHALLENGE_SPLITS}, got {split!r}")
    try:
        tokens = get_prediction_challenge_split(split, dataroot=str(dataroot))
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path} is not valid JSON: {err}") from None
    except (TypeError, AttributeError, KeyError) as err:
        raise DatasetError(
            f"{path} must map scene names to lists of "
            f"'<instance>_<sample>' tokens ({type(err).__name__}: {err})"
        ) from None
    pairs = [tuple(t.split("_")) if isinstance(t, str) else () for t in tokens]
    bad = next((t for t, p in zip(tokens, pairs) if len(p) != 2 or not all(p)), None)
    if bad is not None:
        raise DatasetError(f"{path}: {bad!r} is not an '<instance token>_<sample token>' pair")
    return pairs


def split_scenes(split: str) -> set[str]:
    splits = create_splits_scenes()
    if split == "train_val":
        return set(splits["train"][:200])
    if split not in splits:
        raise DatasetError(f"unknown split {split!r}; choose from {sorted(splits)} or train_val")
    return set(splits[split])


class AgentIndexer:
    """Builds AgentRecords against one loaded NuScenes."""

    def __init__(
        self,
        nusc: NuScenes,
        *,
        frames: str = "keyframes",
        history_s: float = 2.0,
        future_s: float = 6.0,
    ):
        if frames not in ("keyframes", "sweeps"):
            raise DatasetError(f"frames must be 'keyframes' or 'sweeps', got {frames!r}")
        self.nusc = nusc
        self.helper = PredictHelper(nusc)
        self.frames = frames
        self.history_s = history_s
        self.future_s = future_s
        self.past_steps = steps(history_s)
        self.future_steps = steps(future_s)
        # Sweeps: ~12 Hz, with room for timing jitter (26 frames can fall in 2 s).
        self.window_len = (
            self.past_steps + 1
            if frames == "keyframes"
            else int(np.ceil(history_s * CAMERA_HZ * 1.25)) + 1
        )
        self.skipped: Counter = Counter()

    # --------------------------------------------------------------------------- geometry
    def camera_hull(self, box, sd: dict):
        """A global box's clipped hull in a camera sample_data's image (None: not in view, or
        not a camera)."""
        cs = self.nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
        if not cs["camera_intrinsic"]:
            return None
        pose = self.nusc.get("ego_pose", sd["ego_pose_token"])
        return projected_hull(
            box_to_camera(box, pose, cs), cs["camera_intrinsic"], sd["width"], sd["height"]
        )

    def best_camera(self, ann: dict, sample: dict) -> tuple[str, float] | None:
        box = self.nusc.get_box(ann["token"])
        best = None
        for channel, sd_token in sample["data"].items():
            sd = self.nusc.get("sample_data", sd_token)
            if sd["sensor_modality"] != "camera":
                continue
            hull = self.camera_hull(box, sd)
            if hull is not None:
                frac = hull.area / (sd["width"] * sd["height"])
                if best is None or frac > best[1]:
                    best = (channel, frac)
        return best

    def window(self, sample: dict, channel: str) -> list[str]:
        """sample_data tokens of the camera's past window, oldest first. Key frames: the target
        sample's and up to past_steps earlier ones. Sweeps: every camera frame from the first
        past key frame (never before the scene's first key frame) to the target's, at most
        window_len (if more, sweeps are thinned evenly; both ends are kept)."""
        nusc = self.nusc
        keys, s = [], sample
        while s is not None and len(keys) <= self.past_steps and channel in s["data"]:
            keys.append(s["data"][channel])
            s = nusc.get("sample", s["prev"]) if s["prev"] else None
        keys.reverse()
        if self.frames == "keyframes":
            return keys
        tokens, sd = [keys[0]], nusc.get("sample_data", keys[0])
        while sd["token"] != keys[-1] and sd["next"]:
            sd = nusc.get("sample_data", sd["next"])
            tokens.append(sd["token"])
        if len(tokens) > self.window_len:
            keep = np.unique(np.linspace(0, len(tokens) - 1, self.window_len).round().astype(int))
            tokens = [tokens[i] for i in keep]
        return tokens

    def agent_box_in(self, instance_token: str, sd: dict, *, own_or_interpolated: bool = False):
        """The agent's global box at a camera frame, as nusc.get_boxes(sd) gives it: its
        annotation on a key frame (or when the sample has no predecessor), else the devkit's
        interpolation between the previous and the following key frame (timestamp clamped into
        [t0, t1]); None when the agent is not annotated in the following key frame. Computed
        for this one agent (get_boxes builds every box of the sample).

        own_or_interpolated: also None on a sweep that the devkit would give the FOLLOWING key
        frame's box unchanged (no previous sample, or the agent not annotated there): that box
        is where the agent will be, not where it is."""
        nusc, lookup = self.nusc, self.helper.inst_sample_to_ann
        curr = nusc.get("sample", sd["sample_token"])
        curr_ann = lookup.get((curr["token"], instance_token))
        if curr_ann is None:
            return None
        if sd["is_key_frame"]:
            return nusc.get_box(curr_ann)
        prev_ann = lookup.get((curr["prev"], instance_token)) if curr["prev"] else None
        if prev_ann is None:
            return None if own_or_interpolated else nusc.get_box(curr_ann)
        a, b = nusc.get("sample_annotation", prev_ann), nusc.get("sample_annotation", curr_ann)
        t0, t1 = nusc.get("sample", curr["prev"])["timestamp"], curr["timestamp"]
        t = max(t0, min(t1, sd["timestamp"]))
        center = [
            np.interp(t, [t0, t1], [c0, c1]) for c0, c1 in zip(a["translation"], b["translation"])
        ]
        rotation = Quaternion.slerp(
            q0=Quaternion(a["rotation"]), q1=Quaternion(b["rotation"]), amount=(t - t0) / (t1 - t0)
        )
        return Box(center, b["size"], rotation, name=b["category_name"], token=b["token"])

    # --------------------------------------------------------------------------- records
    def record(
        self,
        instance_token: str,
        sample_token: str,
        *,
        require_full_future: bool,
        min_area: float,
        min_visibility: int,
    ) -> AgentRecord | None:
        """The target's record, or None (counted in self.skipped by reason)."""
        found = self._checked_target(
            instance_token, sample_token, require_full_future, min_area, min_visibility
        )
        if found is None:
            return None
        ann, sample, future, (channel, area) = found
        nusc = self.nusc
        tokens = self.window(sample, channel)
        init, hulls = self._window_hulls(instance_token, tokens)
        pad = self.window_len - len(tokens)
        sds = [nusc.get("sample_data", t) for t in tokens]
        past = self.helper.get_past_for_agent(instance_token, sample_token, self.history_s, True)
        return AgentRecord(
            instance_token=instance_token,
            sample_token=sample_token,
            sample_timestamp=sample["timestamp"],
            scene_name=nusc.get("scene", sample["scene_token"])["name"],
            category=ann["category_name"],
            camera=channel,
            frame_tokens=[""] * pad + tokens,
            frame_paths=[""] * pad + [os.path.join(nusc.dataroot, sd["filename"]) for sd in sds],
            frame_timestamps=[0] * pad + [sd["timestamp"] for sd in sds],
            init_frame=init[0] + pad,
            init_hull=init[1],
            source_size=init[2],
            frame_hulls=[[] for _ in range(pad)] + hulls,
            past=np.asarray(past, dtype=np.float32).reshape(-1, 2)[::-1].copy(),
            future=np.asarray(future, dtype=np.float32).reshape(-1, 2),
            translation=list(ann["translation"]),
            rotation=list(ann["rotation"]),
            box_area=float(area),
            visibility=ann["visibility_token"] or "0",
        )

    def _checked_target(
        self, instance_token, sample_token, require_full_future, min_area, min_visibility
    ):
        """(annotation, sample, future, (camera, area)) of a target that passes the filters,
        else None, counted by reason."""
        nusc, helper = self.nusc, self.helper
        key = (sample_token, instance_token)
        if key not in helper.inst_sample_to_ann:
            self.skipped["no annotation for (instance, sample)"] += 1
            return None
        ann = nusc.get("sample_annotation", helper.inst_sample_to_ann[key])
        sample = nusc.get("sample", sample_token)
        future = helper.get_future_for_agent(instance_token, sample_token, self.future_s, True)
        if require_full_future and len(future) < self.future_steps:
            self.skipped["future shorter than future_s"] += 1
            return None
        if int(ann["visibility_token"] or "0") < min_visibility:
            self.skipped["below min_visibility"] += 1
            return None
        cam = self.best_camera(ann, sample)
        if cam is None:
            self.skipped["seen by no camera"] += 1
            return None
        if cam[1] < min_area:
            self.skipped["below min_area"] += 1
            return None
        return ann, sample, future, cam

    def frame_hulls(
        self, tokens: Sequence[str], box_at: Callable[[dict], Box | None]
    ) -> list[list[tuple[float, float]]]:
        """Per camera frame token the clipped hull's points of the global box `box_at(sd)`
        gives there ([] where it gives none, where the box is not in view, and for padding
        tokens "")."""
        hulls = []
        for tok in tokens:
            hull = None
            if tok:
                sd = self.nusc.get("sample_data", tok)
                box = box_at(sd)
                hull = None if box is None else self.camera_hull(box, sd)
            hulls.append(
                [] if hull is None else [tuple(map(float, p)) for p in hull.exterior.coords]
            )
        return hulls

    def _window_hulls(self, instance_token: str, tokens: list[str]):
        """The agent's clipped hull in each window frame ([] where not in view) and (index,
        hull, (width, height)) of the first frame where it is in view."""
        hulls = self.frame_hulls(
            tokens, lambda sd: self.agent_box_in(instance_token, sd, own_or_interpolated=True)
        )
        first = next((i for i, h in enumerate(hulls) if h), None)
        assert first is not None, "the target frame itself is in view"
        sd = self.nusc.get("sample_data", tokens[first])
        return (first, hulls[first], (sd["width"], sd["height"])), hulls


def candidate_targets(
    nusc: NuScenes, dataroot, split: str, challenge: bool | None, categories: tuple[str, ...] | None
) -> tuple[list[tuple[str, str]], Counter, bool]:
    """(instance, sample) pairs of the split → (targets, skipped counts, challenge used)."""
    skipped: Counter = Counter()
    use_challenge = prediction_scenes_path(dataroot).exists() if challenge is None else challenge
    if use_challenge:
        pairs = challenge_targets(dataroot, split)
    else:
        scenes = split_scenes(split)
        scene_tokens = {s["token"] for s in nusc.scene if s["name"] in scenes}
        pairs = [
            (a["instance_token"], a["sample_token"])
            for a in nusc.sample_annotation
            if nusc.get("sample", a["sample_token"])["scene_token"] in scene_tokens
        ]
    known = [
        p
        for p in pairs
        if p[0] in nusc._token2ind["instance"] and p[1] in nusc._token2ind["sample"]
    ]
    if len(known) < len(pairs):
        skipped["token not in this version's tables"] += len(pairs) - len(known)
    if categories:
        kept = []
        for inst, samp in known:
            name = nusc.get("category", nusc.get("instance", inst)["category_token"])["name"]
            if name.startswith(tuple(categories)):
                kept.append((inst, samp))
            else:
                skipped[f"category {name} not among {', '.join(categories)}"] += 1
        known = kept
    return known, skipped, use_challenge


@dataclass
class AgentTargets:
    """The targets of one split, indexed through the devkit: what a Dataset serves."""

    dataroot: str
    version: str
    split: str
    challenge: bool
    frames: str  # "keyframes" or "sweeps"
    history_s: float
    future_s: float
    window_len: int  # frames per window (padded)
    past_steps: int  # key-frame steps of past (2 Hz)
    future_steps: int  # key-frame steps of future (2 Hz)
    records: list[AgentRecord]
    skipped: Counter  # targets left out, by reason


def index_targets(
    dataroot: str | os.PathLike,
    version: str,
    split: str,
    *,
    frames: str,
    history_s: float,
    future_s: float,
    challenge: bool | None = None,
    categories: Sequence[str] | None = None,
    min_visibility: int = 0,
    min_area: float = 0.0,
    require_full_future: bool = True,
    nusc: NuScenes | None = None,
) -> AgentTargets:
    """One AgentRecord per target (instance, sample) of a split.

    split: mini_train/mini_val/train/train_val/val (challenge) or any devkit split name;
    challenge: use maps/prediction/prediction_scenes.json (None = when the file exists);
    frames: "keyframes" (2 Hz) or "sweeps" (every camera frame); categories: category name
    prefixes kept (None = all); min_visibility: lowest visibility token (1..4) kept; min_area:
    lowest clipped projected box area as a fraction of the image at the target sample;
    require_full_future: drop targets whose future is shorter than future_s; nusc: an already
    loaded NuScenes to reuse.
    """
    root = check_dataroot(dataroot, version)
    nusc = nusc or load_nuscenes(root, version)
    pairs, skipped, used_challenge = candidate_targets(
        nusc, root, split, challenge, tuple(categories) if categories else None
    )
    indexer = AgentIndexer(nusc, frames=frames, history_s=history_s, future_s=future_s)
    filters = dict(
        require_full_future=require_full_future, min_area=min_area, min_visibility=min_visibility
    )
    records = [r for inst, samp in pairs if (r := indexer.record(inst, samp, **filters))]
    skipped += indexer.skipped
    if skipped:
        log.info("%s/%s: kept %d targets, skipped %s", version, split, len(records), dict(skipped))
    if not records:
        raise DatasetError(
            f"no targets in {version}/{split} after filtering (skipped: {dict(skipped) or 'none'})"
        )
    steps_ = dict(
        window_len=indexer.window_len,
        past_steps=indexer.past_steps,
        future_steps=indexer.future_steps,
    )
    return AgentTargets(
        str(root),
        version,
        split,
        used_challenge,
        frames,
        history_s,
        future_s,
        records=records,
        skipped=skipped,
        **steps_,
    )
