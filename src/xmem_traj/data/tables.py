"""The nuScenes tables as the devkit reads them: the 13 table files a dataroot must hold, the
version it holds, and the devkit's NuScenes loaded with a one-line error naming a bad table."""

from __future__ import annotations

import json
import os
from pathlib import Path

from nuscenes.nuscenes import NuScenes

from ..errors import DatasetError

TABLES = (
    "category",
    "attribute",
    "visibility",
    "instance",
    "sensor",
    "calibrated_sensor",
    "ego_pose",
    "log",
    "scene",
    "sample",
    "sample_data",
    "sample_annotation",
    "map",
)


def check_dataroot(dataroot: str | os.PathLike, version: str) -> Path:
    root = Path(dataroot)
    if not str(dataroot) or not root.is_dir():
        raise DatasetError(
            f"nuScenes dataroot {str(dataroot)!r} does not exist (pass --dataroot, "
            "the folder that holds v1.0-*/, samples/, sweeps/ and maps/)"
        )
    if not version:
        raise DatasetError("no nuScenes version given (e.g. v1.0-mini or v1.0-trainval)")
    table_dir = root / version
    if not table_dir.is_dir():
        found = sorted(p.name for p in root.glob("v1.0-*"))
        raise DatasetError(
            f"{table_dir} does not exist; versions found under {root}: {found or 'none'}"
        )
    for table in TABLES:
        if not (table_dir / f"{table}.json").exists():
            raise DatasetError(f"missing nuScenes table {table_dir / (table + '.json')}")
    return root


def load_nuscenes(dataroot: str | os.PathLike, version: str) -> NuScenes:
    """The devkit's NuScenes of a checked dataroot; a table that does not parse or does not fit
    the schema is named in a DatasetError."""
    root = check_dataroot(dataroot, version)
    try:
        return NuScenes(version=version, dataroot=str(root), verbose=False)
    except (ValueError, KeyError, IndexError, TypeError, AssertionError) as err:
        for table in TABLES:
            path = root / version / f"{table}.json"
            try:
                records = json.loads(path.read_text())
            except (ValueError, UnicodeDecodeError) as bad:
                raise DatasetError(f"nuScenes table {path} is not valid JSON: {bad}") from None
            if not isinstance(records, list):
                raise DatasetError(f"nuScenes table {path} must hold a list of records") from None
        raise DatasetError(
            f"the nuScenes tables in {root / version} do not fit the devkit's schema "
            f"({type(err).__name__}: {err})"
        ) from None


def version_of(dataroot: str | Path) -> str:
    """The one table version a dataroot holds (a v1.0-*/ folder with scene.json)."""
    found = sorted(p.parent.name for p in Path(dataroot).glob("v1.0-*/scene.json"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise DatasetError(
            f"no nuScenes tables (v1.0-*/scene.json) under {dataroot}; "
            "pass --dataroot the folder that holds v1.0-mini/ or v1.0-trainval/"
        )
    raise DatasetError(f"{dataroot} holds several table versions {found}; pass --version")


__all__ = ["TABLES", "check_dataroot", "load_nuscenes", "version_of"]
