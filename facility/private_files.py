"""Secret files (keys, tokens, passwords) created readable by their owner only."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path, data: str | bytes) -> Path:
    """Create or replace `path` with mode 0600 from the start (never briefly world-readable)."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(
        fd, 0o600
    )  # the mode of os.open applies only to a new file: tighten a replaced one before writing
    with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    return path
