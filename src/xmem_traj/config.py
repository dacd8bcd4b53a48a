"""TrainConfig: the single source of truth for a run, nested in groups (config_groups.py:
data, world, xmem, model, optim, run, eval, experimental; config_context.py: context). Each
builder receives only its group.

The CLI's options are generated from the fields (options.py: one flag per field,
`--kebab-case`; names are unique across groups); a TOML or JSON file may set any of them, flat
(`hidden = 64`) or in tables (`[model] hidden = 64`); explicit CLI options override the file.
Every value goes through one typed validation before any work starts, and the "auto" values
are resolved once, by `TrainConfig.resolved` (what the data offers decides them). The resolved
config is written into every run directory as config.json (nested)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .config_context import ContextConfig
from .config_fields import TYPES, check_fields, split_list
from .config_groups import (
    CONTEXT_KINDS,
    TRAJ_XMEM_CONFIG,
    DataConfig,
    EvalConfig,
    ExperimentalConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    WorldConfig,
    XMemConfig,
)
from .config_segmentation import SegmentationConfig
from .errors import ConfigError

GROUPS: dict[str, type] = {
    "data": DataConfig,
    "world": WorldConfig,
    "xmem": XMemConfig,
    "model": ModelConfig,
    "context": ContextConfig,
    "optim": OptimConfig,
    "run": RunConfig,
    "eval": EvalConfig,
    "experimental": ExperimentalConfig,
}
#: field name → its group (field names are unique across groups: they are the CLI flags)
FIELD_GROUP: dict[str, str] = {f.name: g for g, cls in GROUPS.items() for f in fields(cls)}


def flatten_options(values: dict[str, Any], origin: str) -> dict[str, Any]:
    """Options flat or in group tables ({"model": {"hidden": 64}}) → flat; ConfigError for an
    unknown key or a field under the wrong table, naming `origin`."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if key in GROUPS and isinstance(value, dict):
            for name, inner in value.items():
                if FIELD_GROUP.get(name) != key:
                    raise ConfigError(
                        f"unknown config key {key}.{name} in {origin}; see `xmem-traj train --help`"
                    )
                flat[name] = inner
        elif key in FIELD_GROUP:
            flat[key] = value
        else:
            raise ConfigError(
                f"unknown config key {key!r} in {origin}; see `xmem-traj train --help`"
            )
    return flat


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    world: WorldConfig = field(default_factory=WorldConfig)
    xmem: XMemConfig = field(default_factory=XMemConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    context: ContextConfig = field(default_factory=ContextConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    experimental: ExperimentalConfig = field(default_factory=ExperimentalConfig)

    @classmethod
    def from_flat(cls, flat: dict[str, Any]) -> "TrainConfig":
        """Defaults with these options (field names, as flatten_options gives them) set,
        validated."""
        groups: dict[str, dict[str, Any]] = {g: {} for g in GROUPS}
        for name, value in flat.items():
            groups[FIELD_GROUP[name]][name] = value
        return cls(**{g: GROUPS[g](**kw) for g, kw in groups.items()}).validate()

    @classmethod
    def of(cls, **flat: Any) -> "TrainConfig":
        """Defaults with these flat options (field names) set, validated."""
        return cls.from_flat(flatten_options(flat, "options"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def flat(self) -> dict[str, Any]:
        """Every field by its (unique) name."""
        return {name: getattr(getattr(self, group), name) for name, group in FIELD_GROUP.items()}

    def with_options(self, **flat: Any) -> "TrainConfig":
        """A copy with these flat options changed, validated."""
        return self.from_flat({**self.flat(), **flatten_options(flat, "options")})

    # ---------------------------------------------------------------- validation
    def validate(self) -> "TrainConfig":
        """Types, choices and ranges of every field, then the checks across fields; raises
        ConfigError naming the option. Returns self."""
        for group in GROUPS:
            check_fields(getattr(self, group))
        from .methods import METHODS

        model, xmem, exp = self.model, self.xmem, self.experimental
        methods = model.method_list
        unknown = [m for m in methods if m not in METHODS]
        if model.methods != "auto" and (
            unknown or not methods or len(set(methods)) != len(methods)
        ):
            raise ConfigError(
                f"methods: {model.methods!r} must be auto or a comma list of "
                f"distinct methods from {', '.join(METHODS)}"
            )
        top_k = TRAJ_XMEM_CONFIG["top_k"]
        grid = (math.ceil(xmem.image_height / 16), math.ceil(xmem.image_width / 16))
        if exp.view != "frame" and math.ceil(xmem.crop_size / 16) ** 2 < top_k:
            raise ConfigError(
                f"crop_size {xmem.crop_size} gives XMem fewer than top_k = "
                f"{top_k} memory cells; use at least 96"
            )
        if (model.methods == "auto" or "xmem" in methods) and grid[0] * grid[1] < top_k:
            raise ConfigError(
                f"image_height × image_width = {xmem.image_height}×{xmem.image_width} gives "
                f"XMem a {grid[0]}×{grid[1]} key grid ({grid[0] * grid[1]} cells), fewer than "
                f"its top_k = {top_k} memory matches; use at least e.g. 96×96 or 80×128"
            )
        kinds = xmem.context_list
        if any(k not in CONTEXT_KINDS for k in kinds) or len(set(kinds)) != len(kinds):
            raise ConfigError(
                f"context_objects: {xmem.context_objects!r} must be empty or a comma list of "
                f"distinct kinds from {', '.join(CONTEXT_KINDS)}"
            )
        if kinds and (exp.view != "agent" or xmem.finetune_list):
            raise ConfigError(
                "context_objects: needs the agent view (--view agent) and a frozen XMem "
                "(no --finetune-xmem)"
            )
        if exp.cv_mode and not exp.rollout:
            raise ConfigError("cv_mode: needs the roll-out; drop --no-rollout or --cv-mode")
        if len(split_list(self.eval.primary)) != 2:
            raise ConfigError(f"primary: {self.eval.primary!r} must name two methods, A,B")
        if self.optim.max_steps == 0:
            raise ConfigError("max_steps: 0 trains nothing; use -1 (epochs decide) or >= 1")
        if xmem.xmem_weights and not Path(xmem.xmem_weights).is_file():
            raise ConfigError(
                f"xmem_weights: {xmem.xmem_weights} is not a file (the official "
                "XMem.pth or XMem-s012.pth)"
            )
        if "/" in self.run.name or "\\" in self.run.name or self.run.name in (".", ".."):
            raise ConfigError(
                f"name: {self.run.name!r} must be a plain name (no path "
                "separators, not . or ..); --run-dir says where runs go"
            )
        return self

    # ---------------------------------------------------------------- the "auto" values
    def resolved(self, *, world_file: bool) -> "TrainConfig":
        """The one place where "auto" values are decided: methods (the registry's defaults
        that the data supports; world_file: the data has the synthetic world's side file),
        vision (cues where cue labels exist), precision (bf16 where native) and the cache
        directory. Raises ConfigError for a method the registry or the data cannot serve."""
        from .methods import check_methods, default_methods

        methods = (
            default_methods(world_file=world_file)
            if self.model.methods == "auto"
            else check_methods(self.model.method_list, world_file=world_file)
        )
        labelled = world_file and self.model.cue_loss > 0
        vision = (
            self.model.vision
            if self.model.vision != "auto"
            else ("cues" if labelled else "features")
        )
        precision = (
            self.xmem.precision
            if self.xmem.precision != "auto"
            else ("bf16" if native_bf16(self.run.accelerator) else "32")
        )
        return replace(
            self,
            model=replace(self.model, methods=",".join(methods), vision=vision),
            xmem=replace(self.xmem, precision=precision),
            data=replace(self.data, cache_dir=str(self.data.resolved_cache_dir())),
        )


def native_bf16(accelerator: str) -> bool:
    """Does the device compute bfloat16 natively (not emulated)?"""
    import torch

    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    cpu = torch.backends.cpu.get_cpu_capability()
    checks = [
        getattr(torch.cpu, name, None)
        for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    ]
    return any(check() for check in checks if check is not None) or "AMX" in cpu


__all__ = [
    "CONTEXT_KINDS",
    "ContextConfig",
    "DataConfig",
    "EvalConfig",
    "ExperimentalConfig",
    "FIELD_GROUP",
    "GROUPS",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "SegmentationConfig",
    "TRAJ_XMEM_CONFIG",
    "TYPES",
    "TrainConfig",
    "WorldConfig",
    "XMemConfig",
    "flatten_options",
    "native_bf16",
    "split_list",
]
