"""Input providers: each input kind a model may read (XMem features, the map raster, the
synthetic world's states for the oracles, …) is one provider that builds its per-target arrays
for a split, once, and names the batch slots they fill. A new input is one new file with a
provider and one `register_input` line.

Data flows one way: the prepare stage (traj/prepare.py) builds a PrepareContext (the config,
the loaded tables, the device), asks each provider the run's methods need for its arrays, and
hands them to the batches as TrajBatch.extras[slot].
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from nuscenes.nuscenes import NuScenes

from ..config import TrainConfig
from ..data.agent_dataset import NuScenesAgentDataset
from ..data.maps import DrivableMaps, has_map_expansion
from ..data.sources import DataSource
from ..data.world_file import WorldFile

if TYPE_CHECKING:
    from .backbone import XMemBackbone

log = logging.getLogger(__name__)


@dataclass
class SplitTargets:
    """One split's targets as providers see them: the dataset (records, frames) and the map
    location of every target. role: "train" or "val"."""

    role: str
    dataset: NuScenesAgentDataset
    locations: list[str]

    @property
    def records(self):
        return self.dataset.records

    def __len__(self) -> int:
        return len(self.dataset)


@dataclass
class PrepareContext:
    """What providers share: the resolved config, the data source and its loaded tables, the
    synthetic world's side file (None on other data), the device work runs on (the trainer's),
    the run's XMem (None when no method reads it; built first, so that a bad checkpoint fails
    before any data work) and the drivable-area masks, loaded once per location."""

    cfg: TrainConfig
    source: DataSource
    nusc: NuScenes
    world: WorldFile | None
    device: torch.device
    backbone: "XMemBackbone | None" = None
    report: Callable[[str], None] = log.info
    _masks: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _memo: dict = field(default_factory=dict, repr=False)

    def once(self, key, compute: Callable[[], object]):
        """compute() the first time `key` is asked for, its result afterwards: work that two
        providers share (e.g. the world's states: one input's values, another's labels)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def drivable_maps(self, locations) -> DrivableMaps | None:
        """The drivable-area masks of `locations` (loaded once each); None where the dataroot
        has no map expansion for them."""
        wanted = set(locations)
        if not has_map_expansion(self.source.dataroot, wanted):
            return None
        missing = wanted - set(self._masks)
        if missing:
            self._masks.update(DrivableMaps.load(self.source.dataroot, missing).masks)
        return DrivableMaps(self._masks)


class InputProvider(ABC):
    """Builds one input kind for the targets of a split.

    `slots` names the batch extras it fills; `build` returns one array per slot with the
    targets first, (N, ...). Per-frame inputs fill a slot `<name>` (N, T, C) and its validity
    `<name>_valid` (N, T). A provider whose data must be read per item (e.g. XMem fine-tuned
    online, from the frames) returns an item loader from `items` instead."""

    slots: tuple[str, ...] = ()

    @abstractmethod
    def build(self, split: SplitTargets) -> dict[str, np.ndarray]:
        """slot → (N, ...) array for every target of the split, in order."""

    def constants(self, split: SplitTargets) -> dict[str, np.ndarray]:
        """Split-level arrays (not per target), slot → array: what a model is built with and
        keeps in its state (e.g. CoverNet's trajectory set, from the train split); none by
        default."""
        return {}

    def items(self, split: SplitTargets) -> Callable[[int], dict[str, torch.Tensor]] | None:
        """Online providers: target index → its slots' tensors (read on demand); else None."""
        return None

    def shapes(
        self, split: SplitTargets, arrays: dict[str, np.ndarray]
    ) -> dict[str, tuple[int, ...]]:
        """Per-target shape of each slot (what model factories size themselves by)."""
        return {slot: tuple(a.shape[1:]) for slot, a in arrays.items()}


#: name → factory(context) → provider, or None where the data cannot give this input (e.g.
#: the world's states on a nuScenes copy without the side file).
INPUTS: dict[str, Callable[[PrepareContext], InputProvider | None]] = {}


def register_input(name: str, factory: Callable[[PrepareContext], InputProvider | None]) -> None:
    """Add (or replace) an input provider's factory."""
    INPUTS[name] = factory


def frame_slots(name: str) -> tuple[str, str]:
    """The two slots of a per-frame input: values and validity."""
    return name, f"{name}_valid"


__all__ = [
    "INPUTS",
    "InputProvider",
    "PrepareContext",
    "SplitTargets",
    "frame_slots",
    "register_input",
]
