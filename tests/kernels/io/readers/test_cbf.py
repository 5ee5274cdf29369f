"""The real LCLS CSPAD CBFs: per-ASIC geometry from the header equals DIALS's, pixels land right."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kernels.crystal.dials_frame import read_dials_detector_json
from kernels.io.readers.base import ReaderError
from kernels.io.readers.cbf import CbfReader
from tests.kernels.realdata import realdata

FRAMES = ("idx-20130301060858401.cbf", "idx-20130301060858601.cbf")


@pytest.fixture(scope="module")
def reader():
    return CbfReader([realdata("cspad_thermolysin", name) for name in FRAMES])


def test_header_geometry_equals_dials_pixel_by_pixel(reader):
    dials = read_dials_detector_json(realdata("cspad_thermolysin", "geometry_dials_lab_frame.json"))
    assert [p.name for p in reader.detector.panels] == [p.name for p in dials.panels]
    ss, fs = np.mgrid[0:185, 0:194]
    worst = 0.0
    for i in range(64):
        ours = reader.detector.lab_position(i, fs + 0.5, ss + 0.5)
        theirs = dials.lab_position(i, fs + 0.5, ss + 0.5)
        worst = max(worst, float(np.abs(ours - theirs).max()))
    assert len(reader.detector.panels) == 64 and worst < 1e-9


def test_frames_wavelengths_and_dials_spots_on_bright_pixels(reader):
    assert len(reader) == 2 and reader.events[1].file.endswith(FRAMES[1])
    assert reader.wavelength(0) == pytest.approx(1.272607)
    assert reader.wavelength(1) == pytest.approx(1.272444)
    frame = reader.frame(0)
    assert frame.shape == (64, 185, 194) and frame.dtype == np.int32
    spots = json.loads(realdata("cspad_thermolysin", "dials_strong_spots.json").read_text())
    mine = [s for s in spots["spots"] if s["frame"] == 0]
    peak = [frame[s["panel"], int(s["ss"]), int(s["fs"])] for s in mine]
    # DIALS's global threshold was 50 ADU; its spot centres sit on pixels far above the median
    assert np.median(peak) > 50 > np.median(frame)


def test_a_file_that_is_not_cbf_is_named(tmp_path):
    bad = tmp_path / "broken.cbf"
    bad.write_bytes(b"not a cbf at all")
    with pytest.raises(ReaderError, match="broken.cbf"):
        CbfReader([bad])
