"""The side file's schema, as the training pipeline imports it from here: the names live in
data/world_file.py (the format belongs to the data side). ORACLE_FIELDS, what the cue oracle is
fed and the cue loss's labels per window frame, are the side file's CUE_LABEL_FIELDS: what a
perfect eye reads (the agent's own lamps, its signal's head and colour, its leader's lamps)."""
from __future__ import annotations

from ..data.world_file import (CAUSES, CLASSES, CUE_LABEL_FIELDS, FORMAT, FRAME_FIELDS, HORIZON_US,
                               SIDE_FILE, UNDER_WAY_US, FrameCue)

ORACLE_FIELDS = CUE_LABEL_FIELDS

__all__ = ["CAUSES", "CLASSES", "FORMAT", "FRAME_FIELDS", "FrameCue", "HORIZON_US", "ORACLE_FIELDS",
           "SIDE_FILE", "UNDER_WAY_US"]
