"""Checkpoints written the way every file of a run is: to a temporary file beside the target,
flushed to disk, then renamed over it (atomic.py). Lightning's own writer goes through
fsspec, whose temporary file lives in $TMPDIR: across filesystems its final move is a copy
that empties the old checkpoint first, so running out of space or a kill mid-copy left a
truncated last.ckpt."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from ..atomic import write_file_atomically


class AtomicCheckpointIO(TorchCheckpointIO):
    """TorchCheckpointIO whose saves replace the old file whole or not at all."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        """Serialised in memory first, so that a full disk fails as an OSError naming the
        file (torch.save writing to it directly fails with an opaque RuntimeError)."""
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_file_atomically(Path(path), lambda tmp: tmp.write_bytes(buffer.getbuffer()))


__all__ = ["AtomicCheckpointIO"]
