"""Write a folder so that it appears whole or not at all."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable


def write_dir_atomically(final: Path, write: Callable[[Path], None]) -> Path:
    """Call write(tmp) on a temporary sibling folder, then rename it to `final`. If `final`
    appeared meanwhile (another process won the race), the temporary folder is dropped."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=final.name + ".tmp-", dir=final.parent))
    try:
        write(tmp)
        if final.exists():
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
