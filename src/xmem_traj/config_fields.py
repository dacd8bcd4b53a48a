"""How an option is declared and checked: `_f` (a dataclass field with its help, choices and
range, from which options.py makes the CLI flag) and the one typed check of every field's value
before any work starts (check_fields), for every config group (config_groups.py,
config_context.py, config_segmentation.py)."""

from __future__ import annotations

import math
from dataclasses import field, fields

from .errors import ConfigError


def _f(
    default,
    help: str,
    *,
    choices: tuple | None = None,
    min: float | None = None,
    max: float | None = None,
):
    meta = {"help": help, "choices": choices, "min": min, "max": max}
    return field(default=default, metadata=meta)


def split_list(text: str) -> list[str]:
    """'a, b,,c' → ['a', 'b', 'c']: the one parser of comma lists in config values."""
    return [part.strip() for part in text.split(",") if part.strip()]


TYPES = {"bool": bool, "int": int, "float": float, "str": str}


def check_fields(config) -> None:
    """Every field of a config dataclass through _checked (ints become floats where declared)."""
    for f in fields(config):
        setattr(config, f.name, _checked(f, getattr(config, f.name)))


def _checked(f, value):
    """One field's value with its declared type (ints are accepted for floats), choices and
    range; ConfigError otherwise."""
    kind = TYPES[str(f.type)]
    ok = (
        isinstance(value, bool)
        if kind is bool
        else isinstance(value, int) and not isinstance(value, bool)
        if kind is int
        else isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind is float
        else isinstance(value, str)
    )
    if not ok:
        raise ConfigError(
            f"{f.name}: expected {kind.__name__}, got {type(value).__name__} "
            f"{value!r}" + (" (write true/false without quotes)" if kind is bool else "")
        )
    if kind is float:
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{f.name}: must be a finite number, got {value}")
    meta = f.metadata
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(f"{f.name}: {value!r} is not one of {', '.join(meta['choices'])}")
    if meta.get("min") is not None and value < meta["min"]:
        raise ConfigError(f"{f.name}: {value!r} is below its minimum {meta['min']}")
    if meta.get("max") is not None and value > meta["max"]:
        raise ConfigError(f"{f.name}: {value!r} is above its maximum {meta['max']}")
    return value


__all__ = ["TYPES", "_f", "check_fields", "split_list"]
