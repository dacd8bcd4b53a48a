"""KeyValueMemoryStore: keys, shrinkage, selection and usage shared by all objects; values per
object group (objects that first appeared in the same annotation). A group with M_g value
columns pairs with the LAST M_g key columns — the reference's convention, quirks included."""

from __future__ import annotations

import torch


def _cut(t: torch.Tensor | None, start: int, end: int) -> torch.Tensor | None:
    """Keep t[..., :start] and t[..., end:]; end == 0 means 'to the end' (drop t[..., start:])."""
    if t is None:
        return None
    if end == 0:
        return t[:, :, :start]
    return torch.cat([t[:, :, :start], t[:, :, end:]], -1)


class KeyValueMemoryStore:
    def __init__(self, *, count_usage: bool):
        self.count_usage = count_usage
        self.k: torch.Tensor | None = None  # (1, CK, M)
        self.s: torch.Tensor | None = None  # (1, 1, M)
        self.e: torch.Tensor | None = None  # (1, CK, M)
        self.v: list[torch.Tensor] = []  # per group (n_g, CV, M_g)
        self.obj_groups: list[list[int]] = []  # 0-based object indices per group
        self.all_objects: list[int] = []
        self.use_count: torch.Tensor | None = None  # (1, 1, M)
        self.life_count: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return 0 if self.k is None else self.k.shape[-1]

    @property
    def num_groups(self) -> int:
        return len(self.v)

    def engaged(self) -> bool:
        return self.k is not None

    def get_v_size(self, group: int) -> int:
        return self.v[group].shape[2]

    def add(
        self,
        key: torch.Tensor,
        value,
        shrinkage: torch.Tensor | None,
        selection: torch.Tensor | None,
        objects: list[int] | None,
    ) -> None:
        """key (1, CK, n), shrinkage (1, 1, n), selection (1, CK, n) | None.
        With objects (1-based labels): value (N, CV, n) split into groups (working memory).
        Without: value is a list per group position, None to skip (long-term memory)."""
        n = key.shape[2]
        new_use = torch.zeros((key.shape[0], 1, n), device=key.device, dtype=torch.float32)
        new_life = torch.zeros((key.shape[0], 1, n), device=key.device, dtype=torch.float32) + 1e-7
        if self.k is None:
            self.k, self.s, self.e = key, shrinkage, selection
            if self.count_usage:
                self.use_count, self.life_count = new_use, new_life
        else:
            self.k = torch.cat([self.k, key], -1)
            if shrinkage is not None:
                self.s = torch.cat([self.s, shrinkage], -1)
            if selection is not None:
                self.e = torch.cat([self.e, selection], -1)
            if self.count_usage:
                self.use_count = torch.cat([self.use_count, new_use], -1)
                self.life_count = torch.cat([self.life_count, new_life], -1)

        if objects is not None:
            remaining = [obj - 1 for obj in objects]
            for gi, group in enumerate(self.obj_groups):
                for obj in group:
                    remaining.remove(obj)
                self.v[gi] = torch.cat([self.v[gi], value[group]], -1)
            if remaining:
                self.v.append(value[remaining])
                self.obj_groups.append(list(remaining))
                self.all_objects.extend(remaining)
                if sorted(self.all_objects) != self.all_objects:
                    raise ValueError(
                        f"objects must be added in increasing label order, got "
                        f"{[o + 1 for o in self.all_objects]}"
                    )
        else:
            for gi, gv in enumerate(value):
                if gv is None:
                    continue
                # Groups are extended by position, as the reference does.
                if gi < self.num_groups:
                    self.v[gi] = torch.cat([self.v[gi], gv], -1)
                else:
                    self.v.append(gv)

    def update_usage(self, usage: torch.Tensor) -> None:
        """usage (M,): add to every element's use; every element's life grows by one."""
        if not self.count_usage:
            return
        self.use_count += usage.detach().view_as(self.use_count)
        self.life_count += 1

    def get_usage(self) -> torch.Tensor:
        if not self.count_usage:
            raise RuntimeError(
                "this memory store does not count usage (enable_long_term_count_usage is False)"
            )
        return self.use_count / self.life_count

    def get_all_sliced(self, start: int, end: int):
        """key, shrinkage, selection, usage over columns [start, end) (end == 0: to the end)."""
        sl = slice(start, None) if end == 0 else slice(start, end)

        def pick(t):
            return None if t is None else t[:, :, sl]

        return pick(self.k), pick(self.s), pick(self.e), self.get_usage()[:, :, sl]

    def sieve_by_range(self, start: int, end: int, min_size: int) -> None:
        """Drop columns [start, end) of keys and usage, and of every value group that holds
        at least min_size columns (end is negative or 0 and so relative to each group's own
        length — the reference's asymmetry, kept on purpose)."""
        self.k = _cut(self.k, start, end)
        self.s = _cut(self.s, start, end)
        self.e = _cut(self.e, start, end)
        if self.count_usage:
            self.use_count = _cut(self.use_count, start, end)
            self.life_count = _cut(self.life_count, start, end)
        for gi in range(self.num_groups):
            if self.v[gi].shape[-1] >= min_size:
                self.v[gi] = _cut(self.v[gi], start, end)

    def remove_obsolete_features(self, max_size: int) -> None:
        """Keep elements whose usage is strictly above the (size − max_size)-th smallest."""
        usage = self.get_usage().flatten()
        if self.num_groups > 1:
            raise NotImplementedError(
                "removing obsolete long-term features with several object groups is not "
                "supported by XMem (key indices do not map onto later groups' values)"
            )
        if self.size <= max_size:
            # The reference calls topk(k=0) here and crashes on the empty result (it happens when
            # long-term size hits exactly max_long_term_elements − num_prototypes); removing
            # nothing is the only reading that keeps the caps. Identical wherever it runs.
            return
        values, _ = torch.topk(usage, k=self.size - max_size, largest=False, sorted=True)
        survived = usage > values[-1]
        self.k = self.k[:, :, survived]
        self.s = self.s[:, :, survived] if self.s is not None else None
        self.e = self.e[:, :, survived] if self.e is not None else None
        self.v = [gv[:, :, survived] for gv in self.v]
        self.use_count = self.use_count[:, :, survived]
        self.life_count = self.life_count[:, :, survived]
