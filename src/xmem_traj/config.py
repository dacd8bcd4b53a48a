"""TrainConfig: the single source of truth for a training run. The CLI's options are generated
from its fields (with their help), a TOML/JSON file can set any of them, and explicit CLI
options override the file. The resolved config is written into every run directory."""
from __future__ import annotations

import argparse
import json
import os
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


def _f(default, help: str, **kw):
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    # data
    dataroot: str = _f("", "nuScenes folder (v1.0-*/, samples/, sweeps/, maps/); empty: the "
                          "synthetic nuScenes, generated on first use into the cache directory")
    version: str = _f("", "table version (v1.0-mini, v1.0-trainval); empty: detected")
    train_split: str = _f("", "empty: mini_train for v1.0-mini, train for v1.0-trainval")
    val_split: str = _f("", "empty: mini_val for v1.0-mini, val for v1.0-trainval")
    challenge: bool = _f(True, "targets from maps/prediction/prediction_scenes.json (the "
                              "prediction challenge split); --no-challenge: every agent")
    categories: str = _f("vehicle", "comma list of category prefixes kept (empty: all)")
    frames: str = _f("keyframes", "keyframes (2 Hz) or sweeps (every camera frame)", choices=("keyframes", "sweeps"))
    image_height: int = _f(144, "height of the frames fed to XMem")
    image_width: int = _f(256, "width of the frames fed to XMem")
    synth_scenes: int = _f(30, "scenes of the synthetic default dataset (30: v1.0-trainval "
                                  "names, 24 train + 6 val scenes)")
    synth_seed: int = _f(0, "seed of the synthetic default dataset")
    cache_dir: str = _f("", "synthetic data and feature cache; empty: $XMEM_TRAJ_CACHE or ~/.cache/xmem-traj")
    # XMem
    xmem_weights: str = _f("", "official XMem checkpoint (XMem.pth, XMem-s012.pth); empty: "
                              "seeded random init (features are untrained)")
    features: str = _f("rich", "feature set (hidden_mean = the seed's, rich, all) or a comma "
                              "list of hidden_mean, hidden_pooled, readout_pooled, key_pooled, f16_pooled, geometry")
    masks: str = _f("first", "first: XMem propagates each agent's first-frame mask (the seed's "
                            "scheme); every: the agent's projected box mask is also given at every "
                            "past frame (XMem re-anchored)", choices=("first", "every"))
    finetune_xmem: str = _f("", "comma list of XMem module prefixes to fine-tune (disables the "
                               "feature cache; slow); empty: frozen")
    videos_per_step: int = _f(4, "camera windows XMem steps in lockstep during extraction")
    # head
    head: str = _f("gru", "gru or mlp", choices=("gru", "mlp"))
    hidden: int = _f(128, "head width")
    dropout: float = _f(0.5, "dropout on the XMem feature branch of the head")
    modes: int = _f(1, "predicted modes (K); >1 trains best-of-K with mode probabilities")
    history_only: bool = _f(False, "train the history-only model (no XMem features) as the main model")
    ablation: bool = _f(True, "also train the history-only ablation and report it in the eval table")
    # optimisation
    epochs: int = _f(80, "training epochs")
    batch_size: int = _f(32, "targets per batch")
    lr: float = _f(2e-3, "AdamW learning rate (cosine decay)")
    weight_decay: float = _f(1e-4, "AdamW weight decay")
    seed: int = _f(0, "seed for weights init and data order (runs are repeatable)")
    seeds: int = _f(3, "independent heads per method (seeds seed, seed+1, …); eval reports the "
                       "mean ± sd over them, predict and viz use the first")
    # run
    run_dir: str = _f("runs", "where run directories are created")
    name: str = _f("", "run name; empty: a timestamp")
    accelerator: str = _f("cpu", "cpu, gpu, auto (Lightning)")
    devices: int = _f(1, "devices per node; >1 with --strategy ddp (torchrun works too)")
    num_nodes: int = _f(1, "nodes (DDP)")
    strategy: str = _f("auto", "Lightning strategy: auto, ddp, ...")
    num_workers: int = _f(0, "DataLoader workers for image loading")
    progress: bool = _f(True, "progress bars")
    max_steps: int = _f(-1, "stop after this many optimiser steps (-1: epochs decide)")

    def resolved_cache_dir(self) -> Path:
        return Path(self.cache_dir or os.environ.get("XMEM_TRAJ_CACHE")
                    or Path.home() / ".cache" / "xmem-traj").expanduser()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def add_config_arguments(parser: argparse.ArgumentParser, cls=TrainConfig) -> None:
    """One option per field, --kebab-case, defaults shown; booleans as --x/--no-x."""
    parser.add_argument("--config", help="TOML or JSON file with any of the options below")
    for f in fields(cls):
        flag = "--" + f.name.replace("_", "-")
        kw: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS,
                              "help": f"{f.metadata.get('help', '')} (default: {f.default!r})"}
        if f.type in (bool, "bool"):
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"] = {"int": int, "float": float, "str": str}.get(str(f.type), type(f.default))
            if "choices" in f.metadata:
                kw["choices"] = f.metadata["choices"]
        parser.add_argument(flag, **kw)


def read_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config file {path} does not exist")
    text = path.read_text()
    data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    return data


def build_config(args: argparse.Namespace, cls=TrainConfig, base: dict | None = None) -> TrainConfig:
    """defaults ← base (e.g. a resumed run's config) ← --config file ← explicit CLI options."""
    values = dict(base or {})
    given = vars(args)
    if given.get("config"):
        values.update(read_config_file(given["config"]))
    values.update({k: v for k, v in given.items() if k != "config" and k in {f.name for f in fields(cls)}})
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}")
    return cls(**values)


__all__ = ["TrainConfig", "add_config_arguments", "build_config", "read_config_file"]
