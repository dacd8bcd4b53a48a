"""The methods a run can train: one registry entry each, naming the model factory and the
inputs the model reads. Config choices, the data a run prepares, checkpoint folders, eval rows
and the report's comparisons all follow from it.

A model is any `nn.Module` whose `forward(batch: TrajBatch)` returns trajectories
(B, K, F, 2) in the agent frame and mode logits (B, K) (traj/models/__init__.py says the
rest); its factory takes a `ModelSpec` (traj/models/__init__.py). An input is a provider of
per-target arrays (inputs/base.py), named here by its registry name. Adding a method is a new
model file and one `register_method(Method(...))` line.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from .errors import ConfigError

#: Inputs every method reads besides the past track (unless its Method says context=False):
#: provider name → its ModelConfig switch.
CONTEXT_INPUTS = {"map": "map", "neighbours": "neighbours"}


@dataclass(frozen=True)
class Method:
    """A trained predictor kind.

    build: the model factory, `"module:function"` (imported when first used) or a callable;
    inputs: input providers whose batch slots the model reads (inputs/base.py INPUTS);
    labels: providers whose slots only the training losses read (absent data: left out);
    role: "model" (a predictor one could deploy), "ablation" or "diagnostic" (reads the
    truth: a ceiling, never a competitor); visual: reads the cameras; default: trained by
    `--methods auto`; needs_world: needs the synthetic world's side file; context: also reads
    the context inputs (CONTEXT_INPUTS) whose switch is on (off for a published model that
    sees the world only through its own input, e.g. the devkit's MTP and its raster);
    epochs: the OptimConfig field that holds its epoch count (0 there: optim.epochs);
    options: the config fields only methods naming them here read (a resume that adds such
    methods to a run without any may set them, runs.adds_methods)."""

    name: str
    label: str
    build: str | Callable
    inputs: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    role: str = "model"
    visual: bool = False
    default: bool = False
    needs_world: bool = False
    context: bool = True
    epochs: str = "epochs"
    options: tuple[str, ...] = ()

    def factory(self) -> Callable:
        if callable(self.build):
            return self.build
        module, name = self.build.split(":")
        return getattr(importlib.import_module(module), name)


METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    """Add (or replace) a registry entry; returns it."""
    METHODS[method.name] = method
    return method


_HEAD = "xmem_traj.traj.models.frame_head"
register_method(
    Method(
        "xmem",
        "XMem + history (ours)",
        f"{_HEAD}:xmem_model",
        inputs=("xmem",),
        labels=("cue_labels",),
        visual=True,
        default=True,
    )
)
register_method(
    Method(
        "history_only",
        "history-only (ablation)",
        f"{_HEAD}:history_model",
        role="ablation",
        default=True,
    )
)
register_method(
    Method(
        "scene_state_oracle",
        "history + true scene state (diagnostic)",
        f"{_HEAD}:oracle_model",
        inputs=("scene_state",),
        role="diagnostic",
        default=True,
        needs_world=True,
    )
)
register_method(
    Method(
        "intent_oracle",
        "history + true plans (diagnostic)",
        f"{_HEAD}:oracle_model",
        inputs=("intent",),
        role="diagnostic",
        needs_world=True,
    )
)

_PEERS = "xmem_traj.traj.models.peers"
_RASTER = ("raster_resolution", "raster_ahead", "raster_behind", "raster_side")
_PEER_OPTIONS = ("peer_epochs", "peer_backbone", "peer_hidden", *_RASTER)
register_method(
    Method(
        "mtp",
        "MTP (devkit, raster)",
        f"{_PEERS}:mtp_model",
        inputs=("raster", "agent_state"),
        context=False,
        epochs="peer_epochs",
        options=_PEER_OPTIONS,
    )
)
register_method(
    Method(
        "covernet",
        "CoverNet (devkit, raster)",
        f"{_PEERS}:covernet_model",
        inputs=("raster", "agent_state"),
        labels=("lattice",),  # its trajectory set, from the train split (a model buffer)
        context=False,
        epochs="peer_epochs",
        options=(*_PEER_OPTIONS, "lattice_eps", "lattice_futures"),
    )
)


def method_epochs(name: str, optim) -> int:
    """The epochs a method trains for under `optim` (an OptimConfig)."""
    return getattr(optim, METHODS[name].epochs) or optim.epochs


def method_inputs(name: str, model) -> tuple[str, ...]:
    """The input providers a method's model reads: the context inputs whose switch is on in
    `model` (a ModelConfig; none where the method takes no context), then its own."""
    method = METHODS[name]
    own = method.inputs
    context = tuple(
        i for i, switch in CONTEXT_INPUTS.items() if method.context and getattr(model, switch)
    )
    return tuple(i for i in context if i not in own) + own


def default_methods(*, world_file: bool) -> tuple[str, ...]:
    """`--methods auto`: the registry's defaults that the data supports."""
    return tuple(
        m.name for m in METHODS.values() if m.default and (world_file or not m.needs_world)
    )


def check_methods(names: tuple[str, ...], *, world_file: bool) -> tuple[str, ...]:
    """Names of the registry that the data can serve; ConfigError otherwise."""
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ConfigError(
            f"methods: {', '.join(unknown)} unknown; choose from {', '.join(METHODS)}"
        )
    blind = [n for n in names if METHODS[n].needs_world and not world_file]
    if blind:
        raise ConfigError(
            f"methods: {', '.join(blind)} needs the synthetic world's side file, "
            "which this dataroot does not have; leave it out of --methods"
        )
    return names


def methods_help() -> str:
    return "; ".join(f"{m.name} = {m.label}" for m in METHODS.values())


__all__ = [
    "CONTEXT_INPUTS",
    "METHODS",
    "Method",
    "check_methods",
    "default_methods",
    "method_inputs",
    "methods_help",
    "register_method",
]
