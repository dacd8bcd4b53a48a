"""The synthetic world's side file seen from the training pipeline: a thin adapter over
data/world_file.py keeping the names the pipeline uses (WorldCues.load, .oracle_features,
.intent_features, .target_class; INTENT_WIDTH, class_counts, cue_statistics). A nuScenes copy
without the side file has none of it."""
from __future__ import annotations

import numpy as np

from pathlib import Path

from .records import AgentRecord
from .world_file import (CLASSES, INTENT_WIDTH, KINDS, SIDE_FILE, WorldFile, class_counts,
                         manoeuvre_statistics)

INTENT_KINDS = KINDS


class WorldCues(WorldFile):
    """WorldFile with the pipeline's names."""

    @staticmethod
    def where(dataroot: str | Path, version: str) -> Path:
        """Where a dataroot's side file is (beside its tables)."""
        return Path(dataroot) / version / SIDE_FILE

    def oracle_features(self, rec: AgentRecord) -> tuple[np.ndarray, np.ndarray]:
        """The cue oracle's inputs (and the cue loss's labels) per window frame:
        (T, len(ORACLE_FIELDS)) and valid (T,) — WorldFile.cue_labels."""
        return self.cue_labels(rec)


def cue_statistics(cues: WorldFile) -> dict:
    """Manoeuvres by kind over every annotated agent (world_file.manoeuvre_statistics)."""
    return manoeuvre_statistics(cues)


__all__ = ["CLASSES", "INTENT_KINDS", "INTENT_WIDTH", "WorldCues", "class_counts", "cue_statistics"]
