"""A synthetic nuScenes: a city driven by Eclipse SUMO, rendered through nuScenes cameras and
written in the exact nuScenes format (see writer.generate), with a side file of what caused
what (data/world_file.py holds its schema). docs/world.md describes the world."""

from __future__ import annotations

#: Bumped whenever the world or its files change: cached datasets of another version are
#: regenerated.
WORLD_VERSION = 6

_LAZY = {
    "CAMERAS": ".render",
    "challenge_scene_names": ".writer",
    "generate": ".writer",
    "scene_names": ".writer",
}


def __getattr__(name: str):
    """The writer's names, imported on first use (the package's modules import SUMO)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(name)


__all__ = [
    "CAMERAS",
    "WORLD_VERSION",
    "challenge_scene_names",
    "generate",
    "scene_names",
]
