"""Makes PyPI's torchvision importable beside the CPU wheel of torch.

torchvision 0.28.0 is the release of torch 2.13.0, and PyPI's wheel of it carries C++ ops
built against torch's CUDA wheel: beside the CPU wheel (what `make` installs) they do not
load, and `import torchvision` then fails registering fake kernels for two of them
(torchvision::nms, ::qnms). Lightning's torchmetrics imports torchvision whenever it is
installed, so the whole project would fail with it. What the project uses of torchvision (the
devkit's MTP/CoverNet backbones: ResNet, MobileNetV2) is plain Python; declaring the two
operators' schemas (without kernels: calling them raises) lets the import go through. Where
the ops load (a matching build, e.g. CUDA torch), nothing is done.

`xmem_traj/__init__.py` runs this before anything imports torchvision; a script that imports
lightning or torchmetrics itself imports xmem_traj first.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)
_STUBS = []  # the Library that declares the stub schemas lives as long as the process


def make_torchvision_importable() -> None:
    if "torchvision" in sys.modules:
        return
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return
    import torch

    for ext in sorted(Path(spec.origin).parent.glob("_C.*")):
        try:
            torch.ops.load_library(str(ext))
            return
        except OSError:
            break
    stub = torch.library.Library("torchvision", "DEF")
    for op in ("nms", "qnms"):
        stub.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _STUBS.append(stub)
    log.debug("torchvision's C++ ops do not load beside this torch; its models still work")


__all__ = ["make_torchvision_importable"]
