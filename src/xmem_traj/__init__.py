"""xmem-traj: camera-based trajectory prediction from XMem memory features on nuScenes."""

from .torchvision_compat import make_torchvision_importable

make_torchvision_importable()

__version__ = "0.1.0"
