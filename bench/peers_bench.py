"""The devkit peers' cost, measured:

- rasters/s: the devkit's input representation (StaticLayerRasterizer +
  AgentBoxesWithFadedHistory + Rasterizer) drawn for the first --targets challenge targets of
  --split on a dataroot (default: a small synthetic one, generated in a temporary folder), at
  each --resolution;
- seconds per training step of MTP and CoverNet (forward, the devkit's loss, backward, AdamW)
  on a batch of --batch random rasters of that size, per --backbone, and the epoch that makes
  for --epoch-targets targets.

    python bench/peers_bench.py [--dataroot DIR --split mini_train] [--resolution 0.5 0.25]
                                [--backbone resnet18 mobilenet_v2] [--batch 32]
                                [--device cuda]
"""

from __future__ import annotations

import xmem_traj  # noqa: F401  (first: torchvision importable beside the CPU torch)

# isort: split

import argparse
import tempfile
import time

import numpy as np
import torch
from nuscenes.eval.prediction.splits import get_prediction_challenge_split
from nuscenes.nuscenes import NuScenes
from nuscenes.prediction import PredictHelper
from nuscenes.prediction.input_representation.agents import AgentBoxesWithFadedHistory
from nuscenes.prediction.input_representation.combinators import Rasterizer
from nuscenes.prediction.input_representation.interface import InputRepresentation
from nuscenes.prediction.input_representation.static_layers import StaticLayerRasterizer

from xmem_traj.data.tables import version_of
from xmem_traj.inputs.lattice import epsilon_cover
from xmem_traj.synth import generate
from xmem_traj.traj.batch import TrajBatch
from xmem_traj.traj.models import ModelSpec
from xmem_traj.traj.models.peers import covernet_model, mtp_model

EXTENT = dict(meters_ahead=40.0, meters_behind=10.0, meters_left=25.0, meters_right=25.0)
F = 12


def rasters_per_second(dataroot: str, split: str, resolution: float, targets: int) -> float:
    nusc = NuScenes(version_of(dataroot), dataroot, verbose=False)
    helper = PredictHelper(nusc)
    tokens = get_prediction_challenge_split(split, dataroot=dataroot)[:targets]
    rep = InputRepresentation(
        StaticLayerRasterizer(helper, resolution=resolution, **EXTENT),
        AgentBoxesWithFadedHistory(helper, resolution=resolution, **EXTENT),
        Rasterizer(),
    )
    t0 = time.perf_counter()
    for token in tokens:
        rep.make_input_representation(*token.split("_"))
    return len(tokens) / (time.perf_counter() - t0)


def batch(n: int, pixels: int) -> TrajBatch:
    g = torch.Generator().manual_seed(0)
    return TrajBatch(
        past=torch.zeros(n, 4, 2),
        past_valid=torch.ones(n, 4, dtype=torch.bool),
        traj=torch.cumsum(torch.randn(n, F, 2, generator=g), 1),
        future_valid=torch.ones(n, F, dtype=torch.bool),
        translation=torch.zeros(n, 3),
        rotation=torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1),
        index=torch.arange(n),
        extras={
            "raster": torch.randint(0, 255, (n, 3, pixels, pixels), dtype=torch.uint8),
            "agent_state": torch.randn(n, 3, generator=g),
        },
    )


def step_seconds(
    method: str, backbone: str, pixels: int, n: int, steps: int = 3, device: str = "cpu"
) -> float:
    """Median seconds of a training step (after one warm-up step) on `device`."""
    b = batch(n, pixels).to(device)
    model_cfg = {"modes": 5, "peer_backbone": backbone, "peer_hidden": 4096}
    shapes = {"raster": (3, pixels, pixels), "agent_state": (3,)}
    constants = None
    if method == "covernet":
        futures = np.cumsum(np.random.default_rng(0).normal(size=(2000, F, 2)), 1)
        lattice = futures[epsilon_cover(futures, 4.0)].astype(np.float32)
        shapes["lattice"], constants = lattice.shape, {"lattice": lattice}
    spec = ModelSpec(method, ("raster",), model_cfg, {}, 4, F, shapes, constants=constants)
    model = (mtp_model if method == "mtp" else covernet_model)(spec).train().to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        traj, logits, extras = model.forward_train(b)
        loss = model.losses(b, traj, logits, extras)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        sync()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dataroot", default="", help="empty: a small synthetic dataroot")
    p.add_argument("--split", default="mini_train")
    p.add_argument("--targets", type=int, default=100, help="rasters drawn per resolution")
    p.add_argument("--resolution", type=float, nargs="+", default=[1.0, 0.5])
    p.add_argument("--backbone", nargs="+", default=["resnet18"])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--epoch-targets", type=int, default=10000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="where the training steps run (e.g. cuda)")
    a = p.parse_args()
    if a.threads:  # 0: torch's default
        torch.set_num_threads(a.threads)
    root = a.dataroot
    if not root:
        tmp = tempfile.mkdtemp(prefix="peers_bench_")
        root = str(generate(f"{tmp}/nusc", scenes=3, seed=1, width=160, height=90))
    for res in a.resolution:
        pixels = int(50 / res)
        rate = rasters_per_second(root, a.split, res, a.targets)
        print(f"raster {pixels}×{pixels} ({res} m/px): {rate:.0f} rasters/s")
        for backbone in a.backbone:
            for method in ("mtp", "covernet"):
                s = step_seconds(method, backbone, pixels, a.batch, device=a.device)
                epoch = s * a.epoch_targets / a.batch
                print(
                    f"  {method:8s} {backbone:12s} batch {a.batch}: {s:.3f} s/step "
                    f"({epoch / 60:.1f} min per epoch of {a.epoch_targets} targets)"
                )


if __name__ == "__main__":
    main()
