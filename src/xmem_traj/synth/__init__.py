"""A synthetic nuScenes: a driving world rendered through nuScenes cameras and written in the
exact nuScenes format (see writer.generate)."""
from .render import CAMERAS
from .writer import generate, scene_names, version_of

__all__ = ["CAMERAS", "generate", "scene_names", "version_of"]
