"""xmem-traj: camera-based trajectory prediction from XMem memory features on nuScenes."""

__version__ = "0.1.0"
