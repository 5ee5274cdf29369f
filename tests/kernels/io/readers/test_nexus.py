"""NXmx masters (DLS Eiger 16M, Dectris Eiger 9M): geometry, wavelength, missing data named."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from kernels.io.readers.base import ReaderError
from kernels.io.readers.nexus import NexusReader
from tests.kernels.realdata import realdata

MASTERS = {
    "DLS_Therm_6_2_master.nxs": (488, 0.9802735610373182, "Therm_6_2_000001.h5"),
    "dectris_eiger_master.h5": (1, 0.9801122, "dectris_eiger_data_000001.h5"),
}


@pytest.mark.parametrize("name", MASTERS)
def test_master_metadata_and_beam_centre(name):
    path = realdata("nexus_masters", name)
    frames, wavelength, data_file = MASTERS[name]
    with NexusReader(path) as reader, h5py.File(path) as f:
        assert len(reader) == frames and reader.wavelength(0) == pytest.approx(wavelength)
        (panel,) = reader.detector.panels
        # the direct beam (s = 0) lands on the beam centre the file states
        hit, fs, ss = reader.detector.project(np.zeros((1, 3)), wavelength)
        centre = [
            f["entry/instrument/detector/beam_center_x"][()],
            f["entry/instrument/detector/beam_center_y"][()],
        ]
        assert hit[0] == 0 and np.allclose([fs[0], ss[0]], centre, atol=1e-6)
        assert panel.pixel_size_mm == pytest.approx(0.075)
        with pytest.raises(ReaderError, match=f"{name}: data file {data_file} .* is absent"):
            reader.frame(0)


def test_dls_module_is_its_nxmx_chain():
    with NexusReader(realdata("nexus_masters", "DLS_Therm_6_2_master.nxs")) as reader:
        (panel,) = reader.detector.panels
        assert panel.shape == (4362, 4148)
        # module_offset (0.1662, 0.1725, 0) m then det_z 213.959 mm along the beam
        assert np.allclose(panel.corner, (166.20416031, 172.53078502, 213.95896979))
        assert np.allclose(panel.fast, (-0.075, 0, 0)) and np.allclose(panel.slow, (0, -0.075, 0))


def test_not_a_master_is_named(tmp_path):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f["x"] = 1
    with pytest.raises(ReaderError, match="plain.h5: not an NXmx master"):
        NexusReader(path)
