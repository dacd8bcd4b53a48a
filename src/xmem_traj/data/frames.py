"""Pixels of an agent record: camera frames read from disk and the agent's masks rasterised
at the output size (the devkit's 2-D export hull, filled)."""

from __future__ import annotations

import hashlib
import os
from typing import Sequence

import numpy as np
from PIL import Image
from shapely.geometry import Polygon

from ..errors import DatasetError
from ..projection import rasterize
from .records import AgentRecord


def load_frame(path: str, size: tuple[int, int] | None) -> np.ndarray:
    """JPEG → float32 RGB in [0, 1], (3, H, W), resized to size = (H, W) if given (decoded at
    a reduced scale first when the file is much larger: libjpeg's DCT scaling)."""
    try:
        with Image.open(path) as im:
            if size is not None:  # JPEG: decode at the smallest DCT scale still >= size
                im.draft("RGB", (size[1], size[0]))
            im = im.convert("RGB")
            if size is not None and im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise DatasetError(f"missing image {path}") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise DatasetError(f"cannot read image {path}: {err}") from None
    return arr.transpose(2, 0, 1)


def check_image_sizes(records: Sequence[AgentRecord]) -> None:
    """The first image read per camera against its sample_data width and height: a
    DatasetError naming the file where they differ (images and tables that do not belong
    together are cropped in the wrong place otherwise)."""
    seen: set[str] = set()
    for rec in records:
        if rec.camera in seen:
            continue
        path = rec.frame_paths[rec.init_frame]
        try:
            with Image.open(path) as im:
                size = im.size
        except FileNotFoundError:
            raise DatasetError(f"missing image {path}") from None
        except (OSError, SyntaxError, ValueError) as err:
            raise DatasetError(f"cannot read image {path}: {err}") from None
        if size != tuple(rec.source_size):
            raise DatasetError(
                f"image {path} is {size[0]}×{size[1]} pixels, but its "
                f"sample_data record says {rec.source_size[0]}×"
                f"{rec.source_size[1]}: the images do not belong to these tables"
            )
        seen.add(rec.camera)


def image_files_sha256(records: Sequence[AgentRecord]) -> str:
    """A hash of every window frame file's path, size and modification time: what identifies
    the images' content in a cache key (re-written images under the same tokens change it)."""
    h = hashlib.sha256()
    for path in sorted({p for r in records for p in r.frame_paths if p}):
        try:
            st = os.stat(path)
            h.update(f"{path}|{st.st_size}|{st.st_mtime_ns}".encode())
        except FileNotFoundError:
            h.update(f"{path}|missing".encode())
    return h.hexdigest()


def load_frames(paths: Sequence[str], size: tuple[int, int]) -> np.ndarray:
    """(T, 3, H, W) float32; padding frames ("") are zeros."""
    out = np.zeros((len(paths), 3, *size), np.float32)
    for t, p in enumerate(paths):
        if p:
            out[t] = load_frame(p, size)
    return out


def output_size(rec: AgentRecord, image_size: tuple[int, int] | None) -> tuple[int, int]:
    """(H, W) of the frames and masks served for a record: image_size, or the source size."""
    return tuple(image_size) if image_size else (rec.source_size[1], rec.source_size[0])


def fill_hull(rec: AgentRecord, hull, size: tuple[int, int]) -> np.ndarray:
    """A hull in source pixels filled at size (H, W) → bool (H, W)."""
    return rasterize(Polygon(hull), rec.source_size[0], rec.source_size[1], size[1], size[0])


def init_mask(rec: AgentRecord, size: tuple[int, int]) -> np.ndarray:
    """The agent's hull at its init frame, filled: bool (H, W)."""
    return fill_hull(rec, rec.init_hull, size)


def frame_masks(rec: AgentRecord, size: tuple[int, int]) -> np.ndarray:
    """The agent's hull at every window frame: bool (T, H, W), empty where it is not in view
    (what masks="every" hands XMem)."""
    return np.stack(
        [fill_hull(rec, hull, size) if hull else np.zeros(size, bool) for hull in rec.frame_hulls]
    )


__all__ = ["fill_hull", "frame_masks", "init_mask", "load_frame", "load_frames", "output_size"]
