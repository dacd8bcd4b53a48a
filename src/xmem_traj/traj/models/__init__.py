"""The model contract: what any trajectory model gives the training glue (traj/predictor.py).

A model is an `nn.Module` built by its registry factory (methods.py) from a ModelSpec, with

    forward(batch: TrajBatch) -> (traj (B, K, F, 2) in the agent frame, logits (B, K))

where K ≤ 25 modes are ranked by their logits (softmaxed for probabilities), rows
independent of each other (so that K seeds of it can run as one stacked model,
traj/stacking.py). Optionally:

    forward_train(batch) -> (traj, logits, extras)
        the training step's outputs and what its losses read ({name: (B, …) tensor}, rows
        aligned with the batch);
    losses(batch, traj, logits, extras) -> {name: scalar}
        weighted loss terms (logged as train/<name>) added to the default best-of-K ADE + FDE
        loss; a term named "loss" replaces the default instead (a model with its own loss,
        e.g. a lattice classifier). Reductions happen here, never in forward_train.

The glue adds what applies to every model (the off-road loss, the metrics, the optimiser,
checkpoints), so a new model is one new file and one registry line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ...config import ExperimentalConfig, ModelConfig


@dataclass(frozen=True)
class ModelSpec:
    """What a factory builds a model from: the method and its own inputs (provider names, the
    registry's Method.inputs), the model options (the model and experimental config groups,
    as dicts), the track lengths (key-frame steps) and the per-target shape of every slot the
    method reads. Plain data, saved in checkpoints so that a model can be rebuilt; `backbone`
    (XMem fine-tuned with the model) is not, nor are `constants` (split-level arrays such as
    CoverNet's trajectory set, slot → array, shaped as `shapes` says): a model keeps those
    as buffers, so that its state dict carries them (rebuilt from a checkpoint, it gets
    none and sizes its buffers by `shapes`)."""

    method: str
    inputs: tuple[str, ...]
    model: dict[str, Any]
    experimental: dict[str, Any]
    past_steps: int
    future_steps: int
    shapes: dict[str, tuple[int, ...]]
    backbone: Any = field(default=None, compare=False)
    constants: dict[str, Any] | None = field(default=None, compare=False)

    @classmethod
    def of(
        cls,
        method: str,
        inputs: tuple[str, ...],
        model: ModelConfig,
        experimental: ExperimentalConfig,
        *,
        past_steps: int,
        future_steps: int,
        shapes: dict[str, tuple[int, ...]],
        backbone=None,
        constants: dict[str, Any] | None = None,
    ) -> "ModelSpec":
        return cls(
            method,
            tuple(inputs),
            asdict(model),
            asdict(experimental),
            past_steps,
            future_steps,
            {k: tuple(v) for k, v in shapes.items()},
            backbone,
            constants,
        )

    @staticmethod
    def with_defaults(d: dict[str, Any]) -> dict[str, Any]:
        """A saved spec with the model options it lacks at their defaults: a checkpoint made
        before an option existed was made with what its default does (a new option's default
        keeps the old behaviour). Decoding options (config_groups.DECODING_OPTIONS) are the
        exception: they shape no weight, so a scored checkpoint takes the run's
        (eval/scoring.with_decoding)."""
        return {
            **d,
            "model": {**asdict(ModelConfig()), **d.get("model", {})},
            "experimental": {**asdict(ExperimentalConfig()), **d.get("experimental", {})},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], backbone=None, constants=None) -> "ModelSpec":
        d = cls.with_defaults(d)
        return cls(
            d["method"],
            tuple(d["inputs"]),
            dict(d["model"]),
            dict(d["experimental"]),
            d["past_steps"],
            d["future_steps"],
            {k: tuple(v) for k, v in d["shapes"].items()},
            backbone,
            constants,
        )

    def to_dict(self) -> dict[str, Any]:
        """The plain part (hyperparameters of a checkpoint)."""
        return {
            "method": self.method,
            "inputs": list(self.inputs),
            "model": dict(self.model),
            "experimental": dict(self.experimental),
            "past_steps": self.past_steps,
            "future_steps": self.future_steps,
            "shapes": {k: list(v) for k, v in self.shapes.items()},
        }

    def width(self, slot: str) -> int:
        """The last dimension of a per-frame slot (0 where the method has no such input)."""
        shape = self.shapes.get(slot)
        return int(shape[-1]) if shape else 0


__all__ = ["ModelSpec"]
