"""The neighbours input: the traffic around each target as the annotations give it — the
nearest other agents at the target sample (every category, within a radius), each with its
position there and over the past track's horizon, in the target's frame (the devkit's agent
frame: target at the origin, heading +y). Only annotations at or before the target sample
are read (PredictHelper's past, which follows `prev`).

Slots: "neighbours" (N, M, P + 1, 2), oldest first, the last step at the target sample, and
"neighbours_valid" (N, M, P + 1); neighbours sorted nearest first, absent ones all invalid.
Built once per split and cached (keyed by the targets, the annotation table's content and
the settings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from nuscenes.prediction import PredictHelper
from nuscenes.prediction.helper import convert_global_coords_to_local

from ..cache import cached_arrays, file_sha256
from ..data.records import KEYFRAME_HZ
from .base import InputProvider, PrepareContext, SplitTargets, frame_slots, register_input

FORMAT = 1
SLOTS = frame_slots("neighbours")


def predict_helper(ctx: PrepareContext) -> PredictHelper:
    """The run's PredictHelper (its index over every annotation is built once)."""
    return ctx.once("predict_helper", lambda: PredictHelper(ctx.nusc))


class SampleAgents:
    """Every agent annotated at a sample: instance tokens, global xy there (A, 2) and the
    tracks (A, P + 1, 2) with validity, oldest first, aligned on key-frame times."""

    def __init__(self, helper: PredictHelper, sample_token: str, past_steps: int):
        nusc = helper.data
        t0 = nusc.get("sample", sample_token)["timestamp"]
        anns = helper.get_annotations_for_sample(sample_token)
        self.instances = [a["instance_token"] for a in anns]
        self.xy = np.array([a["translation"][:2] for a in anns], np.float64).reshape(-1, 2)
        self.tracks = np.zeros((len(anns), past_steps + 1, 2), np.float64)
        self.valid = np.zeros((len(anns), past_steps + 1), bool)
        self.tracks[:, -1], self.valid[:, -1] = self.xy, True
        seconds = past_steps / KEYFRAME_HZ
        for a, ann in enumerate(anns):
            past = helper.get_past_for_agent(
                ann["instance_token"], sample_token, seconds, in_agent_frame=False, just_xy=False
            )
            for rec in past:  # newest first; a skipped sample leaves its step invalid
                dt = (t0 - nusc.get("sample", rec["sample_token"])["timestamp"]) / 1e6
                step = int(round(dt * KEYFRAME_HZ))
                if 1 <= step <= past_steps:
                    self.tracks[a, past_steps - step] = rec["translation"][:2]
                    self.valid[a, past_steps - step] = True


def neighbour_arrays(
    helper: PredictHelper, records, *, max_neighbours: int, radius: float, past_steps: int
) -> dict[str, np.ndarray]:
    """The neighbours of every target (see the module's doc) → its two slots."""
    steps = past_steps + 1
    out = np.zeros((len(records), max_neighbours, steps, 2), np.float32)
    valid = np.zeros((len(records), max_neighbours, steps), bool)
    samples: dict[str, SampleAgents] = {}
    for i, rec in enumerate(records):
        if rec.sample_token not in samples:
            samples[rec.sample_token] = SampleAgents(helper, rec.sample_token, past_steps)
        agents = samples[rec.sample_token]
        dist = np.linalg.norm(agents.xy - np.asarray(rec.translation[:2]), axis=1)
        others = [a for a, inst in enumerate(agents.instances) if inst != rec.instance_token]
        near = sorted((dist[a], a) for a in others if dist[a] <= radius)[:max_neighbours]
        for n, (_, a) in enumerate(near):
            seen = agents.valid[a]
            local = convert_global_coords_to_local(
                agents.tracks[a][seen], rec.translation, rec.rotation
            )
            out[i, n][seen] = local
            valid[i, n] = seen
    return {SLOTS[0]: out, SLOTS[1]: valid}


class NeighbourInput(InputProvider):
    slots = SLOTS

    def __init__(self, ctx: PrepareContext):
        self.ctx = ctx

    def identity(self, split: SplitTargets) -> dict:
        c, targets = self.ctx.cfg.context, split.dataset.targets
        table = Path(targets.dataroot) / targets.version / "sample_annotation.json"
        return {
            "format": FORMAT,
            "targets": split.dataset.fingerprint(),
            "annotations_sha256": file_sha256(table),
            "max_neighbours": c.neighbours_max,
            "radius": c.neighbour_radius,
            "past_steps": targets.past_steps,
        }

    def build(self, split: SplitTargets) -> dict[str, np.ndarray]:
        c = self.ctx.cfg.context

        def compute() -> dict[str, np.ndarray]:
            return neighbour_arrays(
                predict_helper(self.ctx),
                split.records,
                max_neighbours=c.neighbours_max,
                radius=c.neighbour_radius,
                past_steps=split.dataset.targets.past_steps,
            )

        return cached_arrays(
            self.ctx.cfg.data.resolved_cache_dir(),
            "neighbours",
            self.identity(split),
            len(split),
            compute,
            describe=f"(neighbours, {split.dataset.split})",
        )


register_input("neighbours", NeighbourInput)

__all__ = ["NeighbourInput", "SampleAgents", "neighbour_arrays", "predict_helper"]
