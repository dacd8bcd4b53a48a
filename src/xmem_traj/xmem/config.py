"""InferenceCore configuration: the reference's key names and eval.py defaults."""

from __future__ import annotations

from typing import Any, Mapping

#: eval.py defaults (enable_long_term_count_usage as interactive_demo.py: always on).
DEFAULT_CONFIG: dict[str, Any] = {
    "top_k": 30,
    "mem_every": 5,
    "deep_update_every": -1,
    "enable_long_term": True,
    "enable_long_term_count_usage": True,
    "max_mid_term_frames": 10,
    "min_mid_term_frames": 5,
    "num_prototypes": 128,
    "max_long_term_elements": 10000,
}


def resolve_config(
    config: Mapping[str, Any] | None, *, key_dim: int, value_dim: int, hidden_dim: int
) -> dict[str, Any]:
    """Defaults ← user config ← dims of the network (as XMem writes them back), validated."""
    unknown = (
        set(config or {})
        - set(DEFAULT_CONFIG)
        - {"key_dim", "value_dim", "hidden_dim", "single_object", "size", "benchmark"}
    )
    if unknown:
        raise ValueError(
            f"unknown XMem config keys: {sorted(unknown)}; known: {sorted(DEFAULT_CONFIG)}"
        )
    out = {**DEFAULT_CONFIG, **(config or {})}
    for name, value in (("key_dim", key_dim), ("value_dim", value_dim), ("hidden_dim", hidden_dim)):
        if name in out and out[name] != value:
            raise ValueError(f"config {name}={out[name]} but the network has {name}={value}")
        out[name] = value
    if out["top_k"] < 1 or out["mem_every"] < 1:
        raise ValueError(
            f"top_k and mem_every must be >= 1, got {out['top_k']}, {out['mem_every']}"
        )
    if out["enable_long_term"]:
        t_min, t_max = out["min_mid_term_frames"], out["max_mid_term_frames"]
        if not 2 <= t_min < t_max:
            raise ValueError(
                f"need 2 <= min_mid_term_frames < max_mid_term_frames, got {t_min} and {t_max} "
                "(the reference's consolidation fails outside that range)"
            )
        if out["num_prototypes"] >= out["max_long_term_elements"]:
            raise ValueError("num_prototypes must be smaller than max_long_term_elements")
    return out
