"""Where the shared real facility files live; tests skip with the reason when they are absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"


def realdata(*parts: str) -> Path:
    """Path to a shared real-data file, or skip the test saying which one is missing."""
    path = REALDATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data {path} is absent (see shared/realdata/README.md)")
    return path
