"""MemoryManager: working, long-term and sensory memory of ONE video (XMem §3.4–3.6)."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from .kv_store import KeyValueMemoryStore
from .memory_util import full_softmax, get_similarity, topk_softmax


class MemoryManager:
    def __init__(self, config: Mapping[str, Any]):
        self.hidden_dim: int = config["hidden_dim"]
        self.top_k: int = config["top_k"]
        self.enable_long_term: bool = config["enable_long_term"]
        self.enable_long_term_usage: bool = config["enable_long_term_count_usage"]
        if self.enable_long_term:
            self.max_mt_frames: int = config["max_mid_term_frames"]
            self.min_mt_frames: int = config["min_mid_term_frames"]
            self.num_prototypes: int = config["num_prototypes"]
            self.max_long_elements: int = config["max_long_term_elements"]
        self.CK: int | None = None
        self.CV: int | None = None
        self.HW: int | None = None
        self.hidden: torch.Tensor | None = None  # (1, N, CH, h, w)
        self.work_mem = KeyValueMemoryStore(count_usage=self.enable_long_term)
        self.long_mem = (
            KeyValueMemoryStore(count_usage=self.enable_long_term_usage)
            if self.enable_long_term
            else None
        )

    # ----------------------------------------------------------------------------- reading
    def match_memory(self, query_key: torch.Tensor, selection: torch.Tensor | None) -> torch.Tensor:
        """query_key (1, CK, h, w), selection (1, CK, h, w) | None → readout (N, CV, h, w)."""
        h, w = query_key.shape[-2:]
        qk = query_key.flatten(start_dim=2)
        qe = None if selection is None else selection.flatten(start_dim=2)
        work, long = self.work_mem, self.long_mem
        num_groups = work.num_groups

        if self.enable_long_term and long.engaged():
            long_size = long.size
            similarity = get_similarity(
                torch.cat([long.k, work.k], -1), torch.cat([long.s, work.s], -1), qk, qe
            )
            sim_lt, sim_wm = similarity[:, :long_size], similarity[:, long_size:]
            aff0, usage = topk_softmax(
                torch.cat([sim_lt[:, -long.get_v_size(0) :], sim_wm], 1), self.top_k
            )
            affinity = [aff0]
            values = []
            for gi in range(num_groups):
                if gi < long.num_groups:
                    if gi > 0:
                        affinity.append(
                            topk_softmax(
                                torch.cat(
                                    [
                                        sim_lt[:, -long.get_v_size(gi) :],
                                        sim_wm[:, -work.get_v_size(gi) :],
                                    ],
                                    1,
                                ),
                                self.top_k,
                            )[0]
                        )
                    values.append(torch.cat([long.v[gi], work.v[gi]], -1))
                else:
                    if gi > 0:
                        affinity.append(
                            topk_softmax(sim_wm[:, -work.get_v_size(gi) :], self.top_k)[0]
                        )
                    values.append(work.v[gi])
            work.update_usage(usage[:, long_size:].flatten())
            if self.enable_long_term_usage:
                long.update_usage(usage[:, :long_size].flatten())
        else:
            similarity = get_similarity(work.k, work.s, qk, qe)
            aff0, usage = topk_softmax(similarity, self.top_k)
            if self.enable_long_term:
                work.update_usage(usage.flatten())
            affinity = [aff0] + [
                topk_softmax(similarity[:, -work.get_v_size(gi) :], self.top_k)[0]
                for gi in range(1, num_groups)
            ]
            values = work.v

        readout = torch.cat([gv @ affinity[gi] for gi, gv in enumerate(values)], 0)
        return readout.view(readout.shape[0], self.CV, h, w)

    # ----------------------------------------------------------------------------- writing
    def add_memory(
        self,
        key: torch.Tensor,
        shrinkage: torch.Tensor,
        value: torch.Tensor,
        objects: list[int],
        selection: torch.Tensor | None = None,
    ) -> None:
        """key (1, CK, h, w), shrinkage (1, 1, h, w), value (1, N, CV, h, w), objects: labels."""
        if self.HW is None:
            h, w = key.shape[-2:]
            self.HW = h * w
            if self.enable_long_term:
                self.min_work_elements = self.min_mt_frames * self.HW
                self.max_work_elements = self.max_mt_frames * self.HW
        key = key.flatten(start_dim=2)
        shrinkage = shrinkage.flatten(start_dim=2)
        value = value[0].flatten(start_dim=2)
        self.CK, self.CV = key.shape[1], value.shape[1]
        if selection is not None:
            selection = selection.flatten(start_dim=2)
        self.work_mem.add(key, value, shrinkage, selection, objects)

        if self.enable_long_term and self.work_mem.size >= self.max_work_elements:
            if self.long_mem.size >= self.max_long_elements - self.num_prototypes:
                self.long_mem.remove_obsolete_features(self.max_long_elements - self.num_prototypes)
            self.compress_features()

    def compress_features(self) -> None:
        """Consolidate working memory (all but the first frame and the newest T_min−1 frames)
        into long-term prototypes."""
        hw, min_work = self.HW, self.min_work_elements
        end = -min_work + hw
        total = self.work_mem.size
        candidate_value: list[torch.Tensor | None] = []
        for gv in self.work_mem.v:
            size = gv.shape[-1]
            if size == total or size > min_work + hw:
                candidate_value.append(gv[:, :, hw:end])
            else:
                candidate_value.append(None)
        proto_key, proto_value, proto_shrinkage = self._consolidate(
            *self.work_mem.get_all_sliced(hw, end), candidate_value
        )
        self.work_mem.sieve_by_range(hw, end, min_size=min_work + hw)
        self.long_mem.add(proto_key, proto_value, proto_shrinkage, selection=None, objects=None)

    def _consolidate(self, cand_key, cand_shrinkage, cand_selection, usage, cand_value):
        n = cand_key.shape[-1]
        if self.num_prototypes > n:
            raise ValueError(
                f"num_prototypes={self.num_prototypes} exceeds the {n} consolidation "
                "candidates; lower it or raise max_mid_term_frames"
            )
        _, idx = torch.topk(usage, k=self.num_prototypes, dim=-1, sorted=True)
        idx = idx.flatten()
        validity = [None if gv is None else idx >= (n - gv.shape[2]) for gv in cand_value]
        proto_key = cand_key[:, :, idx]
        proto_selection = None if cand_selection is None else cand_selection[:, :, idx]
        similarity = get_similarity(cand_key, cand_shrinkage, proto_key, proto_selection)
        affinity = []
        for gi, gv in enumerate(cand_value):
            aff = None
            if gv is not None:
                aff = full_softmax(similarity[:, -gv.shape[2] :, validity[gi]])
                if aff.shape[-1] == 0:
                    aff = None
            affinity.append(aff)
        proto_value = [
            None if affinity[gi] is None else gv @ affinity[gi] for gi, gv in enumerate(cand_value)
        ]
        proto_shrinkage = None if cand_shrinkage is None else cand_shrinkage @ affinity[0]
        return proto_key, proto_value, proto_shrinkage

    # ----------------------------------------------------------------------------- sensory
    def create_hidden_state(self, n: int, sample_key: torch.Tensor) -> None:
        """Zeros for new objects: hidden becomes (1, n, CH, h, w)."""
        h, w = sample_key.shape[-2:]
        shape = (1, n, self.hidden_dim, h, w)
        if self.hidden is None:
            self.hidden = torch.zeros(shape, device=sample_key.device, dtype=sample_key.dtype)
        elif self.hidden.shape[1] != n:
            extra = torch.zeros(
                (1, n - self.hidden.shape[1], *shape[2:]),
                device=sample_key.device,
                dtype=self.hidden.dtype,
            )
            self.hidden = torch.cat([self.hidden, extra], 1)

    def get_hidden(self) -> torch.Tensor | None:
        """Sensory memory (1, N, CH, h, w), h and w of the padded image / 16."""
        return self.hidden

    def set_hidden(self, hidden: torch.Tensor) -> None:
        self.hidden = hidden
