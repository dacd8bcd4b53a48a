"""Per-target model inputs, one provider each (base.py says the contract); importing the
package registers the built-in providers."""

from . import (  # noqa: F401  (their register_input lines)
    lattice,
    maps,
    neighbours,
    rasters,
    world,
    xmem_input,
)
from .base import INPUTS, InputProvider, PrepareContext, SplitTargets, frame_slots, register_input

__all__ = [
    "INPUTS",
    "InputProvider",
    "PrepareContext",
    "SplitTargets",
    "frame_slots",
    "register_input",
]
