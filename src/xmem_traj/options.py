"""Config options from the outside world: one CLI flag per TrainConfig field (argparse, in one
argument group per config group), TOML/JSON config files (flat or in [group] tables), and the
layering defaults ← a run's config.json ← --config file ← explicit flags, validated."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path
from typing import Any, Iterator

import tomllib

from .config import GROUPS, TYPES, TrainConfig, flatten_options
from .errors import ConfigError


def config_fields(groups: tuple[str, ...] | None = None) -> Iterator[tuple[str, Any]]:
    """(group, field) of the named groups (all by default), in declaration order."""
    for group, cls in GROUPS.items():
        if groups is None or group in groups:
            for f in fields(cls):
                yield group, f


def add_config_arguments(
    parser: argparse.ArgumentParser,
    *,
    groups: tuple[str, ...] | None = None,
    only: tuple[str, ...] | None = None,
    config_file: bool = True,
    help_extra: dict[str, str] | None = None,
) -> None:
    """One option per field of `groups` (all by default; `only`: just these fields),
    --kebab-case, defaults shown, in one argument group per config group; booleans as
    --x/--no-x. help_extra adds text to a field's help (e.g. the choices of a registry)."""
    if config_file:
        parser.add_argument(
            "--config",
            help="TOML (.toml) or JSON (.json) file with any of the "
            "options below, flat or in [group] tables",
        )
    sections: dict[str, argparse._ArgumentGroup] = {}
    for group, f in config_fields(groups):
        if only is not None and f.name not in only:
            continue
        if group not in sections:
            doc = (GROUPS[group].__doc__ or "").strip().splitlines()[0]
            sections[group] = parser.add_argument_group(f"{group} options", doc)
        extra = (help_extra or {}).get(f.name, "")
        kw: dict[str, Any] = {
            "dest": f.name,
            "default": argparse.SUPPRESS,
            "help": f"{f.metadata.get('help', '')}{extra} (default: {f.default!r})".replace(
                "%", "%%"
            ),
        }
        if f.type in (bool, "bool"):
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"] = TYPES[str(f.type)]
            if f.metadata.get("choices"):
                kw["choices"] = f.metadata["choices"]
        sections[group].add_argument("--" + f.name.replace("_", "-"), **kw)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A .toml or .json file → its table of options; ConfigError names the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    readers = {".toml": tomllib.loads, ".json": json.loads}
    if path.suffix not in readers:
        raise ConfigError(
            f"config file {path}: unknown extension {path.suffix!r}; use .toml or .json"
        )
    try:
        data = readers[path.suffix](path.read_text())
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path} cannot be parsed: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} must hold a table of options, got {type(data).__name__}"
        )
    return data


def build_config(
    given: argparse.Namespace | dict, *, base: dict | None = None, source: str = ""
) -> TrainConfig:
    """defaults ← base (e.g. a resumed run's config.json) ← --config file ← explicit options,
    validated. Each layer may be flat or nested in group tables."""
    given = dict(vars(given) if isinstance(given, argparse.Namespace) else given)
    values = flatten_options(base or {}, source or "the run's config")
    if given.get("config"):
        values.update(flatten_options(read_config_file(given["config"]), str(given["config"])))
    values.update(flatten_options({k: v for k, v in given.items() if k != "config"}, "options"))
    return TrainConfig.from_flat(values)


__all__ = [
    "add_config_arguments",
    "build_config",
    "config_fields",
    "read_config_file",
]
