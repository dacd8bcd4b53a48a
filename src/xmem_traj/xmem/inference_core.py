"""Stateful XMem inference: the reference's InferenceCore, and a batched engine that steps B
independent videos in lockstep with one network call per stage per frame.

Both share one implementation: `BatchedInferenceCore` keeps a `VideoState` (frame counter,
labels, MemoryManager) per video; `InferenceCore` is its B = 1 view with the reference's API.
Devices follow the network and the inputs; nothing here calls .cuda().
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch

from .config import resolve_config
from .engine_io import DEFAULT_PIXEL_BUDGET, KeyFeatures, StepOutput, budget_chunks
from .masks import as_one_hot, pad_divide_by, unpad
from .memory_manager import MemoryManager
from .network import XMem, aggregate


class VideoState:
    """Per-video state of the engine (what the reference keeps on its InferenceCore)."""

    def __init__(self, config: Mapping[str, Any]):
        self.config = config
        self.all_labels: list[int] | None = None
        self.clear()

    def clear(self) -> None:
        self.curr_ti = -1
        self.last_mem_ti = 0
        self.last_deep_update_ti = -self.config["deep_update_every"]
        self.memory = MemoryManager(self.config)

    @property
    def deep_update_sync(self) -> bool:
        return self.config["deep_update_every"] < 0


@dataclass
class _Plan:
    """Flags of one video for the current frame (XMem §3.3 step 2)."""

    video: int
    mask: torch.Tensor | None
    valid_labels: list[int] | None
    is_mem_frame: bool
    need_segment: bool
    is_deep_update: bool
    is_normal_update: bool


class BatchedInferenceCore:
    """B independent videos of one image size, stepped together.

    Each video keeps its own memory, labels and object count. Per frame there is one
    encode_key call for all active videos, one decoder call for all videos that segment and
    one encode_value call for all videos that write memory.
    """

    def __init__(
        self,
        network: XMem,
        config: Mapping[str, Any] | None = None,
        *,
        batch_size: int,
        grad_enabled: bool = False,
        pixel_budget: int | None = DEFAULT_PIXEL_BUDGET,
    ):
        self.network = network
        self.grad_enabled = grad_enabled  # True only to fine-tune XMem parts through the engine
        # Network calls over more than this many pixels (frames × H × W for encode_key,
        # objects × H × W for the decoder and value encoder) are split: beyond it a bigger
        # batch only spills the caches (None: never split).
        self.pixel_budget = pixel_budget
        self.config = resolve_config(
            config,
            key_dim=network.key_dim,
            value_dim=network.value_dim,
            hidden_dim=network.hidden_dim,
        )
        self.videos = [VideoState(self.config) for _ in range(batch_size)]
        self.last_outputs: list[StepOutput | None] = [None] * batch_size
        self._size: tuple[int, int] | None = None

    @property
    def batch_size(self) -> int:
        return len(self.videos)

    def clear_memory(self) -> None:
        for video in self.videos:
            video.clear()
        self.last_outputs = [None] * self.batch_size
        self._size = None

    def set_all_labels(self, video: int, labels: Sequence[int]) -> None:
        labels = [int(x) for x in labels]
        if not labels or sorted(set(labels)) != labels or labels[0] < 1:
            raise ValueError(f"labels must be increasing positive integers, got {labels}")
        self.videos[video].all_labels = labels

    def step(
        self,
        images: torch.Tensor | Sequence[torch.Tensor],
        masks: Sequence[torch.Tensor | None] | None = None,
        valid_labels: Sequence[Sequence[int] | None] | None = None,
        end: bool | Sequence[bool] = False,
        active: Sequence[bool] | None = None,
        *,
        key_features: KeyFeatures | None = None,
    ) -> list[torch.Tensor | None]:
        """images (B, 3, H, W) normalised (or B tensors 3×H×W of one size); masks[b]: (N_b, H, W)
        one-hot/soft over all labels of video b, or an integer index mask (H, W), or None →
        per video prob (N_b+1, H, W), or None for videos with active[b] False (not stepped).

        key_features: encode_key's outputs for the active videos' padded images (in video
        order), computed beforehand, e.g. once for a frame that several videos share; None
        encodes them here."""
        with torch.set_grad_enabled(self.grad_enabled):
            images, masks, valid_labels, ends, active = self._check_inputs(
                images, masks, valid_labels, end, active
            )
            padded, pad = pad_divide_by(images, 16)
            plans = [
                self._plan(i, masks[i], valid_labels[i], ends[i], images.shape[-2:])
                for i in range(self.batch_size)
                if active[i]
            ]
            outputs: list[torch.Tensor | None] = [None] * self.batch_size
            if not plans:
                return outputs
            rows = torch.tensor([p.video for p in plans], device=images.device)
            frames = padded.index_select(0, rows)
            if key_features is None:
                enc = self._encode_keys(frames, plans)
            elif key_features.key.shape[0] != len(plans):
                raise ValueError(
                    f"key_features has {key_features.key.shape[0]} rows for "
                    f"{len(plans)} active videos"
                )
            else:
                enc = key_features
            probs, readouts = self._segment(enc, plans)
            self._merge_given_masks(plans, probs, enc.key)
            self._write_memory(frames, enc, plans, probs)
            for j, p in enumerate(plans):
                prob = unpad(probs[j], pad)
                hid = self.videos[p.video].memory.hidden
                self.last_outputs[p.video] = StepOutput(
                    prob=prob,
                    key=enc.key[j],
                    f16=enc.f16[j],
                    readout=readouts.get(j),
                    hidden=None if hid is None else hid[0],
                    pad=pad,
                    f8=enc.f8[j],
                    f4=enc.f4[j],
                )
                outputs[p.video] = prob
            return outputs

    # ------------------------------------------------------------------ the steps of a frame
    def _check_inputs(self, images, masks, valid_labels, end, active):
        """Validate and normalise the per-video arguments; the image size must stay fixed."""
        b = self.batch_size
        if isinstance(images, (list, tuple)):
            sizes = {tuple(im.shape) for im in images}
            if len(sizes) > 1:
                raise ValueError(
                    f"all videos of a batch must share one image size, got "
                    f"{sorted(sizes)}; batch videos of different sizes separately"
                )
            images = torch.stack(list(images))
        if images.ndim != 4 or images.shape[0] != b or images.shape[1] != 3:
            raise ValueError(f"images must be (B={b}, 3, H, W), got {tuple(images.shape)}")
        if not torch.is_floating_point(images):
            raise TypeError(f"images must be normalised float tensors, got {images.dtype}")
        masks = list(masks) if masks is not None else [None] * b
        valid_labels = list(valid_labels) if valid_labels is not None else [None] * b
        ends = [bool(end)] * b if isinstance(end, bool) else [bool(e) for e in end]
        active = [True] * b if active is None else [bool(a) for a in active]
        if not (len(masks) == len(valid_labels) == len(ends) == len(active) == b):
            raise ValueError(f"masks, valid_labels, end and active need one entry per video ({b})")
        if self._size is None:
            self._size = tuple(images.shape[-2:])
        elif tuple(images.shape[-2:]) != self._size:
            raise ValueError(
                f"image size changed from {self._size} to {tuple(images.shape[-2:])} "
                "within a video; call clear_memory() before a new video"
            )
        return images, masks, valid_labels, ends, active

    def _chunks(self, sizes: Sequence[int], pixels: int) -> list[slice]:
        """Consecutive runs of items (sizes[i] objects or frames each) within the pixel budget."""
        return budget_chunks(sizes, pixels, self.pixel_budget)

    def _encode_keys(self, frames: torch.Tensor, plans: list[_Plan]) -> KeyFeatures:
        """encode_key for every active video (shrinkage/selection only if needed), in chunks."""
        need_sk = any(p.is_mem_frame for p in plans)
        need_ek = any(self.config["enable_long_term"] or p.need_segment for p in plans)
        parts = [
            KeyFeatures(*self.network.encode_key(frames[c], need_sk=need_sk, need_ek=need_ek))
            for c in self._chunks([1] * len(plans), frames.shape[-2] * frames.shape[-1])
        ]
        return KeyFeatures.cat(parts)

    def _segment(
        self, enc: KeyFeatures, plans: list[_Plan]
    ) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]:
        """Memory readout per video, then one decoder call over the objects of every video
        that segments → probs and readouts by plan index."""
        probs: dict[int, torch.Tensor] = {}
        readouts: dict[int, torch.Tensor] = {}
        seg = [j for j, p in enumerate(plans) if p.need_segment]
        if not seg:
            return probs, readouts
        net = self.network
        hidden_list = []
        for j in seg:
            mem = self.videos[plans[j].video].memory
            sel = enc.selection[j : j + 1] if enc.selection is not None else None
            readouts[j] = mem.match_memory(enc.key[j : j + 1], sel)
            if mem.hidden is not None:
                hidden_list.append(mem.hidden[0])
        counts = [readouts[j].shape[0] for j in seg]
        h_out = any(plans[j].is_normal_update for j in seg)
        pixels = enc.f4.shape[-2] * enc.f4.shape[-1] * 16
        for chunk in self._chunks(counts, pixels):
            part, part_counts = seg[chunk], counts[chunk]
            idx = torch.tensor(part, device=enc.key.device)
            hidden = torch.cat(hidden_list[chunk], 0) if net.hidden_dim > 0 else None
            new_hidden, _, seg_probs = net.segment(
                (
                    enc.f16.index_select(0, idx),
                    enc.f8.index_select(0, idx),
                    enc.f4.index_select(0, idx),
                ),
                torch.cat([readouts[j] for j in part], 0),
                hidden,
                part_counts,
                h_out=h_out,
            )
            start = 0
            for j, n, prob in zip(part, part_counts, seg_probs):
                probs[j] = prob
                if plans[j].is_normal_update and new_hidden is not None:
                    self.videos[plans[j].video].memory.set_hidden(
                        new_hidden[start : start + n][None]
                    )
                start += n
        return probs, readouts

    def _merge_given_masks(
        self, plans: list[_Plan], probs: dict[int, torch.Tensor], key: torch.Tensor
    ) -> None:
        """Masks given this frame replace (valid labels) or extend the prediction in probs."""
        for j, p in enumerate(plans):
            if p.mask is None:
                continue
            video = self.videos[p.video]
            mask, _ = pad_divide_by(p.mask, 16)
            pred = probs.get(j)
            if pred is not None:
                pred_no_bg = pred[1:].clone()
                pred_no_bg[:, mask.sum(0) > 0.5] = 0
                mask = mask.type_as(pred_no_bg).clone()
                if p.valid_labels is not None:
                    keep = [i for i in range(pred_no_bg.shape[0]) if (i + 1) not in p.valid_labels]
                    mask[keep] = pred_no_bg[keep]
            probs[j] = aggregate(mask, dim=0)[1]
            video.memory.create_hidden_state(len(video.all_labels), key[j : j + 1])

    def _write_memory(
        self,
        frames: torch.Tensor,
        enc: KeyFeatures,
        plans: list[_Plan],
        probs: dict[int, torch.Tensor],
    ) -> None:
        """One value-encoder call over every video that writes memory this frame."""
        mem = [j for j, p in enumerate(plans) if p.is_mem_frame]
        if not mem:
            return
        all_counts = [probs[j].shape[0] - 1 for j in mem]
        deep = any(plans[j].is_deep_update for j in mem)
        for chunk in self._chunks(all_counts, frames.shape[-2] * frames.shape[-1]):
            self._write_memory_chunk(frames, enc, plans, probs, mem[chunk], all_counts[chunk], deep)

    def _write_memory_chunk(self, frames, enc, plans, probs, mem, counts, deep) -> None:
        net = self.network
        idx = torch.tensor(mem, device=frames.device)
        hidden = None
        if net.hidden_dim > 0:
            hidden = torch.cat([self.videos[plans[j].video].memory.hidden[0] for j in mem], 0)
        values, new_hidden = net.encode_value(
            frames.index_select(0, idx),
            enc.f16.index_select(0, idx),
            hidden,
            torch.cat([probs[j][1:] for j in mem], 0),
            counts,
            is_deep_update=deep,
        )
        start = 0
        for j, n in zip(mem, counts):
            p, video = plans[j], self.videos[plans[j].video]
            sel = enc.selection[j : j + 1] if self.config["enable_long_term"] else None
            video.memory.add_memory(
                enc.key[j : j + 1],
                enc.shrinkage[j : j + 1],
                values[start : start + n][None],
                video.all_labels,
                sel,
            )
            video.last_mem_ti = video.curr_ti
            if p.is_deep_update:
                if new_hidden is not None:
                    video.memory.set_hidden(new_hidden[start : start + n][None])
                video.last_deep_update_ti = video.curr_ti
            start += n

    def _plan(self, i: int, mask, valid_labels, end: bool, size) -> _Plan:
        video = self.videos[i]
        t = video.curr_ti + 1  # validated first: a refused call leaves the video unchanged
        if mask is not None:
            if video.all_labels is None:
                raise ValueError(f"video {i}: a mask was given before set_all_labels()")
            mask = as_one_hot(mask, video.all_labels, size)
        elif t == 0:
            raise ValueError(f"video {i}: the first frame needs a mask (XMem starts from one)")
        if valid_labels is not None:
            valid_labels = [int(x) for x in valid_labels]
        video.curr_ti = t
        sync = video.deep_update_sync
        is_mem_frame = (
            (t - video.last_mem_ti >= self.config["mem_every"]) or mask is not None
        ) and not end
        need_segment = t > 0 and (
            valid_labels is None or len(video.all_labels) != len(valid_labels)
        )
        is_deep_update = (
            (sync and is_mem_frame)
            or (not sync and t - video.last_deep_update_ti >= self.config["deep_update_every"])
        ) and not end
        is_normal_update = (not sync or not is_deep_update) and not end
        return _Plan(
            i, mask, valid_labels, is_mem_frame, need_segment, is_deep_update, is_normal_update
        )


class InferenceCore:
    """The reference API for one video: set_all_labels, step, clear_memory, memory.get_hidden()."""

    def __init__(self, network: XMem, config: Mapping[str, Any] | None = None):
        self._engine = BatchedInferenceCore(network, config, batch_size=1)
        self.network = network
        self.config = self._engine.config

    @property
    def memory(self) -> MemoryManager:
        return self._engine.videos[0].memory

    @property
    def all_labels(self) -> list[int] | None:
        return self._engine.videos[0].all_labels

    @property
    def curr_ti(self) -> int:
        return self._engine.videos[0].curr_ti

    @property
    def last_output(self) -> StepOutput | None:
        """Intermediates of the last step (see StepOutput), for feature read-out."""
        return self._engine.last_outputs[0]

    def clear_memory(self) -> None:
        self._engine.clear_memory()

    def set_all_labels(self, all_labels: Sequence[int]) -> None:
        self._engine.set_all_labels(0, all_labels)

    def step(
        self,
        image: torch.Tensor,
        mask: torch.Tensor | None = None,
        valid_labels: Sequence[int] | None = None,
        end: bool = False,
    ) -> torch.Tensor:
        """image: normalised 3×H×W float (padding to multiples of 16 happens inside);
        mask: N×H×W one-hot over all labels (or an H×W integer index mask) →
        prob (N+1)×H×W, background first."""
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"image must be 3×H×W, got {tuple(image.shape)}")
        return self._engine.step(image[None], [mask], [valid_labels], end)[0]
