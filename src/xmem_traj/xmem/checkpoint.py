"""Loading official XMem checkpoints (XMem.pth, XMem-s012.pth, …) unchanged, or a seeded
random-init network when none is given."""

from __future__ import annotations

import logging
import math
import os
import pickle
import zlib
from typing import Mapping

import torch

from .network import XMem, XMemDims

log = logging.getLogger(__name__)

PathOrStateDict = str | os.PathLike | Mapping[str, torch.Tensor]


class CheckpointError(ValueError):
    """A checkpoint that is not a loadable XMem state dict; the message lists what is wrong."""


def read_state_dict(path: str | os.PathLike, map_location="cpu") -> dict[str, torch.Tensor]:
    """torch.load with weights_only=True; refuses pickled objects and files that are not torch
    checkpoints with a message naming the file."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as err:
        raise CheckpointError(f"{path}: cannot be opened: {err}") from None
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        raise CheckpointError(
            f"{path}: not a torch checkpoint (neither the zip format of "
            "torch.save nor its legacy pickle format)"
        )
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" in str(err) or "Unsupported operand" in str(err):
            raise CheckpointError(
                f"{path}: refused to load — the file holds pickled Python objects, not only "
                f"tensors (weights_only=True). Save a plain state dict instead. Detail: "
                f"{str(err).splitlines()[0]}"
            ) from None
        raise CheckpointError(
            f"{path}: cannot be read as a torch checkpoint: {str(err).splitlines()[0]}"
        ) from None
    except Exception as err:  # noqa: BLE001  (a damaged file surfaces as many error types)
        raise CheckpointError(
            f"{path}: cannot be read as a torch checkpoint "
            f"({type(err).__name__}: {err}); is it truncated?"
        ) from None
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors, got {type(obj).__name__}")
    return dict(obj)


def random_state_dict(model: XMem, *, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded non-degenerate random weights for every key of model's state dict.

    Each key draws from its own generator (seed and crc32 of the key), so the result does not
    depend on module order. Convs and linears get N(0, 1/fan_in), BatchNorm stays near identity;
    the value encoder's mask channels are scaled ×10 and the prediction bias is −1 so that masks
    propagate and probabilities are not saturated (the recipe of shared/xmem_reference).
    """
    own = model.state_dict()
    out = {}
    for key, ref in own.items():
        prefix, leaf = key.rsplit(".", 1)
        gen = torch.Generator().manual_seed(seed * 2_654_435_761 + zlib.crc32(key.encode()))
        shape = ref.shape
        if leaf == "num_batches_tracked":
            out[key] = torch.zeros_like(ref)
            continue
        z = torch.randn(shape, generator=gen, dtype=torch.float64)
        if f"{prefix}.running_mean" in own:  # BatchNorm
            value = {
                "weight": 1.0 + 0.05 * z,
                "bias": 0.05 * z,
                "running_mean": 0.05 * z,
                "running_var": 1.0 + 0.1 * torch.rand(shape, generator=gen, dtype=torch.float64),
            }[leaf]
        elif leaf == "weight":
            value = z / math.sqrt(math.prod(shape[1:]))
            if key == "value_encoder.conv1.weight":
                value[:, 3:] *= 10.0
        else:
            value = 0.01 * z - (1.0 if key == "decoder.pred.bias" else 0.0)
        out[key] = value.to(ref.dtype)
    return out


def _widen_single_object_conv(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The reference's load_weights conversion: a 4-channel value conv1 gets a zero 5th channel."""
    w = state_dict.get("value_encoder.conv1.weight")
    if w is not None and w.shape[1] == 4:
        log.info("widening value_encoder.conv1 from 4 to 5 input channels (zeros), as XMem does")
        pad = torch.zeros((w.shape[0], 1, *w.shape[2:]), dtype=w.dtype, device=w.device)
        state_dict = {**state_dict, "value_encoder.conv1.weight": torch.cat([w, pad], 1)}
    return state_dict


def _strict_load(model: XMem, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:

        def block(title, items):
            shown = "\n    ".join(items[:20]) + ("\n    …" if len(items) > 20 else "")
            return f"\n  {title} ({len(items)}):\n    {shown}" if items else ""

        raise CheckpointError(
            f"{source} does not match XMem (key_dim={model.key_dim}, value_dim={model.value_dim}, "
            f"hidden_dim={model.hidden_dim}):"
            + block("missing keys", missing)
            + block("unexpected keys", unexpected)
            + block("shape mismatches", mismatched)
        )
    model.load_state_dict(state_dict, strict=True)


def load_xmem(
    path_or_state_dict: PathOrStateDict | None = None,
    map_location="cpu",
    *,
    single_object: bool = False,
    seed: int = 0,
) -> XMem:
    """An XMem in eval mode from a checkpoint path or state dict (dims inferred from shapes).

    With None, a seeded random-init network is returned (and a warning says so): its features
    are untrained, fine for tests and pipeline checks, meaningless as vision features.
    """
    if path_or_state_dict is None:
        log.warning(
            "no XMem checkpoint given: using random-init weights (seed %d); XMem "
            "features are UNTRAINED. Pass --xmem-weights XMem.pth for real features.",
            seed,
        )
        model = XMem(XMemDims(single_object=single_object))
        model.load_state_dict(random_state_dict(model, seed=seed))
        return model.eval()
    if isinstance(path_or_state_dict, Mapping):
        source, state_dict = "state dict", dict(path_or_state_dict)
    else:
        source = os.fspath(path_or_state_dict)
        state_dict = read_state_dict(source, map_location)
    if any(k.startswith("module.") for k in state_dict):
        state_dict = {k.removeprefix("module."): v for k, v in state_dict.items()}
    try:
        dims = XMemDims.from_state_dict(state_dict, single_object=single_object)
    except ValueError as err:
        raise CheckpointError(f"{source}: {err}") from None
    if not single_object:
        state_dict = _widen_single_object_conv(state_dict)
    model = XMem(dims)
    _strict_load(model, state_dict, source)
    if map_location is not None and not isinstance(path_or_state_dict, Mapping):
        model = model.to(map_location)
    return model.eval()
