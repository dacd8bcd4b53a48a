"""XMem (Cheng & Schwing, ECCV 2022) reimplemented to load the official checkpoints unchanged.

Ports of reference scripts change imports only:

    from xmem_traj.xmem import load_xmem, InferenceCore
    network = load_xmem("XMem.pth", map_location="cpu")
    core = InferenceCore(network, config)      # reference config names, eval.py defaults
    core.set_all_labels([1, 2])
    prob = core.step(image, mask, valid_labels=[1, 2])
"""

from .checkpoint import CheckpointError, load_xmem, random_state_dict, read_state_dict
from .config import DEFAULT_CONFIG
from .engine_io import KeyFeatures, StepOutput
from .features import (
    FEATURE_KINDS,
    FEATURE_SETS,
    GEOMETRY_FIELDS,
    FeatureKind,
    feature_width,
    mask_geometry,
    mask_pool,
    object_features,
    resolve_feature_kinds,
)
from .inference_core import BatchedInferenceCore, InferenceCore
from .masks import as_one_hot, pad_divide_by, unpad
from .network import XMem, XMemDims, aggregate

__all__ = [
    "BatchedInferenceCore",
    "CheckpointError",
    "DEFAULT_CONFIG",
    "FEATURE_KINDS",
    "FEATURE_SETS",
    "FeatureKind",
    "GEOMETRY_FIELDS",
    "InferenceCore",
    "KeyFeatures",
    "StepOutput",
    "XMem",
    "XMemDims",
    "aggregate",
    "as_one_hot",
    "feature_width",
    "load_xmem",
    "mask_geometry",
    "mask_pool",
    "object_features",
    "pad_divide_by",
    "random_state_dict",
    "read_state_dict",
    "resolve_feature_kinds",
    "unpad",
]
