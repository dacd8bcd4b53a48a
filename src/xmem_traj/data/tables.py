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
        nusc = NuScenes(version=version, dataroot=str(root), verbose=False)
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
    check_fields(nusc, root / version)
    return nusc


#: The fields this project reads, by table: "int", "str", "bool", or n (a list of n numbers).
FIELDS = {
    "scene": {"name": "str", "log_token": "str"},
    "log": {"location": "str"},
    "sample": {"timestamp": "int", "scene_token": "str"},
    "sample_data": {
        "timestamp": "int",
        "width": "int",
        "height": "int",
        "filename": "str",
        "is_key_frame": "bool",
    },
    "sample_annotation": {"translation": 3, "rotation": 4, "size": 3, "visibility_token": "str"},
    "ego_pose": {"translation": 3, "rotation": 4, "timestamp": "int"},
    "calibrated_sensor": {"translation": 3, "rotation": 4},
}
_KINDS = {"int": "an integer", "str": "a string", "bool": "true or false"}


def _fits(value, kind) -> bool:
    if kind == "int":
        return type(value) is int
    if kind == "str":
        return type(value) is str
    if kind == "bool":
        return type(value) is bool
    return (
        type(value) is list and len(value) == kind and all(type(v) in (int, float) for v in value)
    )


def check_fields(nusc: NuScenes, table_dir: Path) -> None:
    """DatasetError naming the table file, the record and the field for the first value of a
    field this project reads that is missing or of the wrong type (e.g. a timestamp as a
    string), before any work uses it."""
    for table, fields in FIELDS.items():
        for record in getattr(nusc, table):
            for name, kind in fields.items():
                if name not in record or not _fits(record[name], kind):
                    want = _KINDS.get(kind) or f"a list of {kind} numbers"
                    got = repr(record[name]) if name in record else "missing"
                    raise DatasetError(
                        f"{table_dir / table}.json: record "
                        f"{record.get('token', '?')} has {name} {got}; "
                        f"expected {want}"
                    )


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
