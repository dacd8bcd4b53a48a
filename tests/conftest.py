"""Shared test fixtures: the XMem reference material in ../shared and recipe weights."""

from __future__ import annotations

import xmem_traj  # noqa: F401  (first: torchvision importable beside the CPU torch)

# isort: split

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
REFERENCE_DIR = Path(
    os.environ.get("XMEM_REFERENCE_DIR", REPO.parent / "shared" / "xmem_reference")
)
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def reference_dir() -> Path:
    if not (REFERENCE_DIR / "state_dict_manifest.json").exists():
        msg = f"XMem reference material not found at {REFERENCE_DIR} (set XMEM_REFERENCE_DIR)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return REFERENCE_DIR


def fixture_dirs() -> list[Path]:
    return sorted(p for p in REFERENCE_DIR.glob("fixture_*") if (p / "fixture.json").exists())


@pytest.fixture(scope="session")
def recipe_state_dict() -> dict[str, torch.Tensor]:
    """The reference weight recipe (shared/xmem_reference/make_weights.py), as torch tensors."""
    ref = reference_dir()
    spec = importlib.util.spec_from_file_location("make_weights", ref / "make_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    manifest = json.loads((ref / "state_dict_manifest.json").read_text())
    return {k: torch.from_numpy(v) for k, v in module.make_weights(manifest).items()}


@pytest.fixture(scope="session")
def recipe_xmem(recipe_state_dict):
    from xmem_traj.xmem import load_xmem

    return load_xmem(recipe_state_dict)


def normalise(frame_uint8: np.ndarray) -> torch.Tensor:
    """uint8 H×W×3 RGB → normalised 3×H×W float32, as eval.py feeds XMem."""
    x = (frame_uint8.astype(np.float32) / 255 - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(x).permute(2, 0, 1).contiguous()


def synthetic_video(t: int, h: int, w: int, n_objects: int, seed: int):
    """Moving coloured blobs over a smooth background: frames uint8 (T, H, W, 3), labels
    (T, H, W)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx / w * 200), (yy / h * 180), np.full((h, w), 90.0)], -1)
    frames, labels = [], []
    start = rng.uniform([0.2 * h, 0.2 * w], [0.8 * h, 0.8 * w], size=(n_objects, 2))
    vel = rng.uniform(-0.03, 0.03, size=(n_objects, 2)) * [h, w]
    colours = rng.uniform(0, 255, size=(n_objects, 3))
    for ti in range(t):
        img, lab = base.copy(), np.zeros((h, w), np.uint8)
        for i in range(n_objects):
            cy, cx = start[i] + vel[i] * ti
            inside = ((yy - cy) / (0.18 * h)) ** 2 + ((xx - cx) / (0.15 * w)) ** 2 < 1
            img[inside] = colours[i]
            lab[inside] = i + 1
        img += rng.normal(0, 3, img.shape)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
        labels.append(lab)
    return np.stack(frames), np.stack(labels)


SIZE = dict(width=320, height=180)


def tiny_config(synth_root: Path, tmp_path: Path, **kw):
    """A TrainConfig small enough for a test: the session's synthetic root, caches and runs
    under tmp_path, tiny images and heads, one seed, two epochs; `kw` overrides any option."""
    from xmem_traj.config import TrainConfig

    base = dict(
        dataroot=str(synth_root),
        cache_dir=str(tmp_path / "cache"),
        run_dir=str(tmp_path / "runs"),
        image_height=64,
        image_width=128,
        features="hidden_mean,geometry",
        epochs=2,
        batch_size=16,
        hidden=32,
        progress=False,
        name="t",
        seeds=1,
    )
    return TrainConfig.of(**{**base, **kw})


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """A small synthetic nuScenes (3 scenes: 2 mini_train, 1 mini_val) shared by the tests."""
    from xmem_traj.synth import generate

    # (a target every 4th key frame: the SUMO world's queues keep more vehicles in range with a
    # full future, and more of them in each frame, than the earlier world did; the loader and
    # training tests need a few dozen targets, not hundreds of XMem objects)
    return generate(
        tmp_path_factory.mktemp("nusc") / "keyframes", scenes=3, seed=5, target_stride=4, **SIZE
    )


@pytest.fixture(scope="session")
def nusc(synth_root):
    from nuscenes.nuscenes import NuScenes

    return NuScenes("v1.0-mini", str(synth_root), verbose=False)
