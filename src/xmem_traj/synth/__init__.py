"""A synthetic nuScenes: a driving world rendered through nuScenes cameras and written in the
exact nuScenes format (see writer.generate), with a side file of what there was to see."""
from .render import CAMERAS
from .writer import challenge_scene_names, generate, scene_names

#: Bumped whenever the world or its files change: cached datasets of another version are
#: regenerated.
WORLD_VERSION = 5

__all__ = ["CAMERAS", "WORLD_VERSION", "challenge_scene_names", "generate", "scene_names"]
