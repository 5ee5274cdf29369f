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


def stream_geometry(stream: Path, folder: Path) -> Path:
    """The CrystFEL geometry embedded in a stream file, written to `folder` (``embedded.geom``)."""
    text = Path(stream).read_text()
    geom = text.split("----- Begin geometry file -----\n")[1].split("----- End geometry file")[0]
    path = Path(folder) / "embedded.geom"
    path.write_text(geom)
    return path


JUNGFRAU_4M_STREAM = ("crystfel_streams", "photolyase_swissfel_alvra_run19.stream")
"""SwissFEL Alvra's Jungfrau 4M (8 modules of 514 x 1030 pixels, 75 um), in its stream."""
