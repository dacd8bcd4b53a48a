"""The XMem backbone (the seed's "wrapper that uses XMem encoders+memory"): camera windows →
per-frame, per-object features through the batched engine.

Videos are multi-object: object i (label i+1) enters at its init frame with its init mask,
which is how XMem adds objects mid-video. Frames before an object enters give zeros and are
marked invalid.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ..xmem import BatchedInferenceCore, XMem, object_features

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Named feature sets; each entry lists object_features() keys, concatenated in that order.
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "hidden_mean": ("hidden_mean",),                    # the seed sketch's feature
    "rich": ("hidden_pooled", "readout_pooled", "key_pooled", "geometry"),
    "all": ("hidden_mean", "hidden_pooled", "readout_pooled", "key_pooled", "f16_pooled", "geometry"),
}

#: XMem settings for agent windows: 2 Hz key frames are far apart, so every frame is memory.
TRAJ_XMEM_CONFIG = {"mem_every": 1, "top_k": 30, "max_mid_term_frames": 10, "min_mid_term_frames": 5}


def resolve_features(spec: str | Sequence[str]) -> tuple[str, ...]:
    """'rich' → its keys; 'hidden_mean,geometry' → those keys."""
    if isinstance(spec, str):
        if spec in FEATURE_SETS:
            return FEATURE_SETS[spec]
        spec = [s.strip() for s in spec.split(",") if s.strip()]
    known = FEATURE_SETS["all"]
    bad = [s for s in spec if s not in known]
    if bad or not spec:
        raise ValueError(f"unknown feature kinds {bad or spec}; use a set {sorted(FEATURE_SETS)} "
                         f"or a comma list of {list(known)}")
    return tuple(spec)


def normalise(frames: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1], (…, 3, H, W) → ImageNet-normalised, as XMem's eval.py feeds it."""
    mean = torch.tensor(IMAGENET_MEAN, device=frames.device, dtype=frames.dtype)[:, None, None]
    std = torch.tensor(IMAGENET_STD, device=frames.device, dtype=frames.dtype)[:, None, None]
    return (frames - mean) / std


class XMemBackbone(nn.Module):
    """Frozen by default; `trainable` names XMem submodules (prefixes) to fine-tune.

    masks="first": XMem starts from each agent's mask at its init frame and propagates it (the
    seed sketch's scheme). masks="every": the agent's projected box mask (from the past
    annotations the challenge allows) is also handed over at every later frame; XMem still
    segments from memory, then the given mask replaces the prediction and is written to memory.
    """

    def __init__(self, network: XMem, *, features: str | Sequence[str] = "rich",
                 xmem_config: Mapping[str, Any] | None = None, trainable: Sequence[str] = (),
                 masks: str = "first"):
        super().__init__()
        if masks not in ("first", "every"):
            raise ValueError(f"masks must be 'first' or 'every', got {masks!r}")
        self.masks = masks
        self.network = network
        self.features = resolve_features(features)
        self.xmem_config = {**TRAJ_XMEM_CONFIG, **(xmem_config or {})}
        self.trainable = tuple(trainable)
        names = [n for n, _ in network.named_parameters()]
        for prefix in self.trainable:
            if not any(n.startswith(prefix) for n in names):
                raise ValueError(f"no XMem parameters under {prefix!r} (e.g. decoder, "
                                 "decoder.hidden_update, value_encoder.hidden_reinforce)")
        for name, p in network.named_parameters():
            p.requires_grad_(any(name.startswith(prefix) for prefix in self.trainable))
        network.eval()

    @property
    def dims(self) -> dict[str, int]:
        net = self.network
        return {"hidden_mean": net.hidden_dim, "hidden_pooled": net.hidden_dim,
                "readout_pooled": net.value_dim, "key_pooled": net.key_dim, "f16_pooled": 1024,
                "geometry": 7}

    @property
    def feature_dim(self) -> int:
        return sum(self.dims[k] for k in self.features)

    def train(self, mode: bool = True):  # BatchNorm stays in eval mode, as at XMem inference
        super().train(mode)
        self.network.eval()
        return self

    def forward(self, frames: torch.Tensor, init_masks: Sequence[torch.Tensor],
                init_frames: Sequence[Sequence[int]],
                frame_masks: Sequence[torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """frames (B, T, 3, H, W) RGB in [0, 1]; per video init_masks[b] (N_b, H, W) and
        init_frames[b] (N_b,) in entry order (and frame_masks[b] (N_b, T, H, W) with
        masks="every") → features (B, N, T, C) and valid (B, N, T), N = max N_b (missing
        objects stay zero and invalid)."""
        if self.masks == "every" and frame_masks is None:
            raise ValueError('masks="every" needs frame_masks')
        b, t_len = frames.shape[:2]
        n_max = max(len(f) for f in init_frames)
        device, dims = frames.device, self.dims
        out = torch.zeros((b, n_max, t_len, self.feature_dim), device=device)
        valid = torch.zeros((b, n_max, t_len), dtype=torch.bool, device=device)
        engine = BatchedInferenceCore(self.network, self.xmem_config, batch_size=b,
                                      grad_enabled=bool(self.trainable) and torch.is_grad_enabled())
        starts = [min(f) for f in init_frames]
        for t in range(t_len):
            active = [t >= s for s in starts]
            if not any(active):
                continue
            masks, valid_labels = [], []
            for v in range(b):
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
                    m = torch.zeros((n_now, *frames.shape[-2:]), device=device)
                    m[new] = init_masks[v][new].to(device=device, dtype=m.dtype)
                    masks.append(m)
                    valid_labels.append([i + 1 for i in new])
                else:
                    masks.append(None)
                    valid_labels.append(None)
            engine.step(normalise(frames[:, t]), masks, valid_labels, active=active)
            for v in range(b):
                if not active[v]:
                    continue
                feats = object_features(engine.last_outputs[v])
                n = feats["geometry"].shape[0]
                parts = []
                for k in self.features:
                    f = feats[k]
                    if f.shape[1] != dims[k]:  # readout on unsegmented frames: zeros
                        f = torch.zeros((n, dims[k]), device=device, dtype=out.dtype)
                    parts.append(f)
                out[v, :n, t] = torch.cat(parts, dim=1)
                valid[v, :n, t] = True
        return out, valid
