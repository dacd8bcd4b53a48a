"""The stateless XMem network: encode_key, encode_value, segment.

Objects are flat: O objects of B frames, counts[b] of them belonging to frame b (contiguous),
so frames with different object counts share one call. Config (key_dim, value_dim,
hidden_dim) is inferred from a state dict exactly as the reference's
`XMem.init_hyperparameters` does; `single_object` is a flag, never inferred. Memory and
per-video state live in the inference engine (inference_core.py), not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .modules import Decoder, KeyEncoder, KeyProjection, ValueEncoder


@dataclass(frozen=True)
class XMemDims:
    key_dim: int = 64
    value_dim: int = 512
    hidden_dim: int = 64
    single_object: bool = False

    @classmethod
    def from_state_dict(
        cls, state_dict: Mapping[str, torch.Tensor], *, single_object: bool = False
    ) -> "XMemDims":
        """The reference's shape-based inference (hidden off when hidden_update is absent)."""
        try:
            key_dim = state_dict["key_proj.key_proj.weight"].shape[0]
            value_dim = state_dict["value_encoder.fuser.block2.conv2.weight"].shape[0]
        except KeyError as err:
            raise ValueError(
                f"not an XMem state dict: key {err.args[0]!r} is missing "
                f"(first keys: {list(state_dict)[:3]})"
            ) from None
        hidden_w = state_dict.get("decoder.hidden_update.transform.weight")
        hidden_dim = 0 if hidden_w is None else hidden_w.shape[0] // 3
        return cls(int(key_dim), int(value_dim), int(hidden_dim), single_object)


def aggregate(prob: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft aggregation: object probabilities (…, N, …) → (logits, prob) with background first.

    bg = Π(1 − p); clamp to [1e-7, 1 − 1e-7]; logit; softmax over the N+1 channels.
    """
    bg = torch.prod(1 - prob, dim=dim, keepdim=True)
    new_prob = torch.cat([bg, prob], dim=dim).clamp(1e-7, 1 - 1e-7)
    logits = torch.log(new_prob / (1 - new_prob))
    return logits, F.softmax(logits, dim=dim)


def others_channel(masks: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """For each object, the sum of the other objects' masks of the same frame.

    masks (O, H, W) with objects of frame b contiguous (counts[b] of them) → (O, H, W).
    A lone object gets zeros, as in the reference.
    """
    out = []
    start = 0
    for n in counts:
        frame_masks = masks[start : start + n]
        if n == 1:
            out.append(torch.zeros_like(frame_masks))
        else:
            out.append(
                torch.stack(
                    [frame_masks[[j for j in range(n) if j != i]].sum(dim=0) for i in range(n)]
                )
            )
        start += n
    return torch.cat(out, dim=0)


def owner_index(counts: list[int], device: torch.device) -> torch.Tensor:
    """[2, 1] → tensor([0, 0, 1]): which frame each flat object belongs to."""
    return torch.repeat_interleave(
        torch.arange(len(counts), device=device), torch.tensor(counts, device=device)
    )


class XMem(nn.Module):
    """XMem (Cheng & Schwing, ECCV 2022), module names and shapes equal to the checkpoints'."""

    def __init__(self, dims: XMemDims = XMemDims()):
        super().__init__()
        self.dims = dims
        self.key_encoder = KeyEncoder()
        self.value_encoder = ValueEncoder(dims.value_dim, dims.hidden_dim, dims.single_object)
        self.key_proj = KeyProjection(1024, dims.key_dim)
        self.decoder = Decoder(dims.value_dim, dims.hidden_dim)

    @property
    def key_dim(self) -> int:
        return self.dims.key_dim

    @property
    def value_dim(self) -> int:
        return self.dims.value_dim

    @property
    def hidden_dim(self) -> int:
        return self.dims.hidden_dim

    def encode_key(self, image: torch.Tensor, *, need_sk: bool = True, need_ek: bool = True):
        """image (B, 3, H, W), H and W multiples of 16 →
        key (B, CK, h, w), shrinkage (B, 1, h, w) | None, selection (B, CK, h, w) | None,
        f16 (B, 1024, h, w), f8 (B, 512, 2h, 2w), f4 (B, 256, 4h, 4w)."""
        f16, f8, f4 = self.key_encoder(image)
        key, shrinkage, selection = self.key_proj(
            f16, need_shrinkage=need_sk, need_selection=need_ek
        )
        return key, shrinkage, selection, f16, f8, f4

    def encode_value(
        self,
        image: torch.Tensor,
        f16: torch.Tensor,
        hidden: torch.Tensor | None,
        masks: torch.Tensor,
        counts: list[int],
        *,
        is_deep_update: bool = True,
    ):
        """Objects of several frames in one call.

        image (B, 3, H, W), f16 (B, 1024, h, w), masks (O, H, W) with counts[b] objects of frame
        b (contiguous), hidden (O, CH, h, w) → value (O, CV, h, w), hidden (O, CH, h, w) (the
        reinforced one if is_deep_update, else the input)."""
        owner = owner_index(counts, image.device)
        others = others_channel(masks, counts)
        value = self.value_encoder(image, f16, masks, others, owner)
        if is_deep_update and self.value_encoder.hidden_reinforce is not None:
            hidden = self.value_encoder.hidden_reinforce(value, hidden)
        return value, hidden

    def segment(
        self,
        features: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        readout: torch.Tensor,
        hidden: torch.Tensor | None,
        counts: list[int],
        *,
        h_out: bool = True,
    ):
        """Decode the objects of several frames in one call.

        features = (f16, f8, f4) of B frames; readout (O, CV, h, w); hidden (O, CH, h, w) →
        new hidden (O, CH, h, w) | None, logits (O, H, W), and per frame b the aggregated
        prob (counts[b] + 1, H, W), background first."""
        owner = owner_index(counts, readout.device)
        new_hidden, logits = self.decoder(*features, hidden, readout, owner, h_out=h_out)
        prob = torch.sigmoid(logits)
        probs = [aggregate(p, dim=0)[1] for p in torch.split(prob, counts, dim=0)]
        return new_hidden, logits, probs
