"""The XMem backbone: camera windows → per-frame, per-object features through the batched engine.

Videos are multi-object: object i (label i+1) enters at its init frame with its init mask,
which is how XMem adds objects mid-video. Frames before an object enters give zeros and are
marked invalid.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ..config import TRAJ_XMEM_CONFIG, XMemConfig
from ..errors import ConfigError
from ..xmem import (
    BatchedInferenceCore,
    KeyFeatures,
    XMem,
    feature_width,
    load_xmem,
    object_features,
    resolve_feature_kinds,
)
from ..xmem.engine_io import DEFAULT_PIXEL_BUDGET, budget_chunks
from ..xmem.masks import pad_divide_by
from ..xmem.optimize import InferenceSettings, inference_copy
from ..xmem.preprocess import normalise

log = logging.getLogger(__name__)


class XMemBackbone(nn.Module):
    """Frozen by default; `trainable` names XMem submodules (prefixes) to fine-tune.

    masks="first": XMem starts from each agent's mask at its init frame and propagates it (the
    seed sketch's scheme). masks="every": the agent's projected box mask (from the past
    annotations the challenge allows) is also handed over at every later frame; XMem still
    segments from memory, then the given mask replaces the prediction and is written to memory.

    precision "bf16" runs XMem in bfloat16 (autocast; memory distances stay float32), "32" in
    float32. A frozen backbone runs an inference copy of the network (BatchNorm folded,
    channels-last, weights in the compute dtype); fine-tuning runs the network itself.
    """

    def __init__(
        self,
        network: XMem,
        *,
        features: Sequence[str],
        masks: str,
        trainable: Sequence[str] = (),
        xmem_config: Mapping[str, Any] | None = None,
        precision: str = "32",
        channels_last: bool = True,
    ):
        super().__init__()
        if precision not in ("32", "bf16"):
            raise ValueError(f"precision must be '32' or 'bf16', got {precision!r}")
        self.precision, self.channels_last = precision, channels_last
        self.__dict__["_runtime"] = None  # not a submodule: no second copy in state dicts
        if masks not in ("first", "every"):
            raise ValueError(f"masks must be 'first' or 'every', got {masks!r}")
        self.masks = masks
        self.network = network
        self.features = tuple(features)
        self.xmem_config = {**TRAJ_XMEM_CONFIG, **(xmem_config or {})}
        self.trainable = tuple(trainable)
        names = [n for n, _ in network.named_parameters()]
        for prefix in self.trainable:
            if not any(n.startswith(prefix) for n in names):
                raise ValueError(
                    f"no XMem parameters under {prefix!r} (e.g. decoder, "
                    "decoder.hidden_update, value_encoder.hidden_reinforce)"
                )
        for name, p in network.named_parameters():
            p.requires_grad_(any(name.startswith(prefix) for prefix in self.trainable))
        network.eval()

    @classmethod
    def from_config(cls, xmem: XMemConfig, *, masks: str, seed: int) -> "XMemBackbone":
        """XMem from xmem.xmem_weights (or the random init of `seed`) with the group's
        features, fine-tuned parts and (resolved) precision, and the mask scheme `masks`.
        A feature set that names no kind is a ConfigError."""
        try:
            kinds = resolve_feature_kinds(xmem.features)
        except ValueError as err:
            raise ConfigError(f"features: {err}") from None
        if xmem.precision == "auto":
            raise ValueError("resolve the config first (TrainConfig.resolved): precision is auto")
        network = load_xmem(xmem.xmem_weights or None, map_location="cpu", seed=seed)
        return cls(
            network,
            features=kinds,
            masks=masks,
            trainable=xmem.finetune_list,
            precision=xmem.precision,
        )

    @property
    def feature_dim(self) -> int:
        return feature_width(self.features, self.network.dims)

    def runtime_network(self) -> XMem:
        """The network the engine runs: the inference copy (made once per device), or the
        network itself when parts of it are fine-tuned."""
        if self.trainable:
            return self.network
        device = next(self.network.parameters()).device
        runtime = self.__dict__["_runtime"]
        if runtime is None or next(runtime.parameters()).device != device:
            dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
            runtime = inference_copy(self.network, InferenceSettings(dtype, self.channels_last))
            self.__dict__["_runtime"] = runtime
        return runtime

    def autocast(self, device: torch.device):
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def encode_frames(self, images: torch.Tensor) -> KeyFeatures:
        """images (N, 3, H, W) RGB in [0, 1] → encode_key's outputs for the normalised, padded
        frames, in batches of the engine's pixel budget."""
        net = self.runtime_network()
        padded, _ = pad_divide_by(normalise(images), 16)
        pixels = padded.shape[-2] * padded.shape[-1]
        with self.autocast(images.device):
            return KeyFeatures.cat(
                [
                    KeyFeatures(*net.encode_key(padded[c]))
                    for c in budget_chunks([1] * len(padded), pixels, DEFAULT_PIXEL_BUDGET)
                ]
            )

    def train(self, mode: bool = True):  # BatchNorm stays in eval mode, as at XMem inference
        super().train(mode)
        self.network.eval()
        return self

    def _step_masks(
        self,
        engine: BatchedInferenceCore,
        t: int,
        init_masks,
        init_frames,
        frame_masks,
        starts,
        active,
        size,
        device,
    ):
        """Per video: what is handed to XMem at frame t (masks, valid labels)."""
        masks, valid_labels = [], []
        for v in range(len(init_frames)):
            new = [i for i, f in enumerate(init_frames[v]) if int(f) == t]
            n_now = sum(int(f) <= t for f in init_frames[v])
            if new:
                engine.set_all_labels(v, range(1, n_now + 1))
            if self.masks == "every" and active[v]:
                # Every object so far gets its given mask; None = segment all, then replace.
                m = frame_masks[v][:n_now, t].to(device=device, dtype=torch.float32)
                m[new] = init_masks[v][new].to(device=device, dtype=m.dtype)
                masks.append(m)
                valid_labels.append(None if t > starts[v] else list(range(1, n_now + 1)))
            elif new:
                m = torch.zeros((n_now, *size), device=device)
                m[new] = init_masks[v][new].to(device=device, dtype=m.dtype)
                masks.append(m)
                valid_labels.append([i + 1 for i in new])
            else:
                masks.append(None)
                valid_labels.append(None)
        return masks, valid_labels

    def forward(
        self,
        frames: torch.Tensor,
        init_masks: Sequence[torch.Tensor],
        init_frames: Sequence[Sequence[int]],
        frame_masks: Sequence[torch.Tensor] | None = None,
        *,
        key_features=None,
        on_step=None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """frames (B, T, 3, H, W) RGB in [0, 1]; per video init_masks[b] (N_b, H, W) and
        init_frames[b] (N_b,) in entry order (and frame_masks[b] (N_b, T, H, W) with
        masks="every") → features (B, N, T, C) float32 and valid (B, N, T), N = max N_b
        (missing objects stay zero and invalid).

        key_features(t, videos) → KeyFeatures of frame t of those videos (encode_frames'
        outputs, computed once per frame by the caller); None: encoded here.
        on_step(t, probs) sees each frame's XMem output."""
        if self.masks == "every" and frame_masks is None:
            raise ValueError('masks="every" needs frame_masks')
        b, t_len = frames.shape[:2]
        n_max = max(len(f) for f in init_frames)
        device = frames.device
        out = torch.zeros((b, n_max, t_len, self.feature_dim), device=device)
        valid = torch.zeros((b, n_max, t_len), dtype=torch.bool, device=device)
        engine = BatchedInferenceCore(
            self.runtime_network(),
            self.xmem_config,
            batch_size=b,
            grad_enabled=bool(self.trainable) and torch.is_grad_enabled(),
        )
        starts = [min(f) for f in init_frames]
        for t in range(t_len):
            active = [t >= s for s in starts]
            if not any(active):
                continue
            masks, valid_labels = self._step_masks(
                engine,
                t,
                init_masks,
                init_frames,
                frame_masks,
                starts,
                active,
                frames.shape[-2:],
                device,
            )
            keys = (
                None
                if key_features is None
                else key_features(t, [v for v in range(b) if active[v]])
            )
            with self.autocast(device):
                probs = engine.step(
                    normalise(frames[:, t]), masks, valid_labels, active=active, key_features=keys
                )
            if on_step is not None:
                on_step(t, probs)
            self._read_features(engine, active, t, out, valid)
        return out, valid

    def _read_features(
        self,
        engine: BatchedInferenceCore,
        active: list[bool],
        t: int,
        out: torch.Tensor,
        valid: torch.Tensor,
    ) -> None:
        """Every active video's per-object features at frame t into out (B, N, T, C) and
        valid (B, N, T)."""
        for v, on in enumerate(active):
            if not on:
                continue
            feats = object_features(
                engine.last_outputs[v], self.features, value_dim=self.network.value_dim
            )
            row = torch.cat([feats[k] for k in self.features], dim=1)
            out[v, : row.shape[0], t] = row
            valid[v, : row.shape[0], t] = True


__all__ = ["XMemBackbone"]
