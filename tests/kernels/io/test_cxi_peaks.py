"""CXI peak lists (Cheetah/OM layout): round trip, placement on panels, bad files named."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from kernels.io.cxi_peaks import PeakFileError, locate_on_panels, read_cxi_peaks, write_cxi_peaks
from kernels.io.geom import read_geom
from kernels.io.geom_detector import to_detector
from tests.kernels.realdata import realdata


def test_peaks_round_trip_beside_frames(tmp_path):
    rng = np.random.default_rng(4)
    peaks = [rng.uniform(0, 1000, (n, 3)).astype(np.float32) for n in (5, 0, 17, 1)]
    path = tmp_path / "run.cxi"
    with h5py.File(path, "w") as f:
        f["/entry_1/data_1/data"] = np.zeros((4, 2, 2))
    write_cxi_peaks(path, peaks, max_peaks=2048)
    back = read_cxi_peaks(path)
    assert [len(p) for p in back] == [5, 0, 17, 1]
    assert all(np.array_equal(a, b) for a, b in zip(back, peaks))
    with h5py.File(path) as f:
        assert f["/entry_1/result_1/peakXPosRaw"].shape == (4, 2048)
        assert "/entry_1/data_1/data" in f  # the frames are kept


def test_peaks_are_placed_on_their_panels():
    geom = read_geom(realdata("geometry_files", "crystfel_examples", "cspad-cxiformat.geom"))
    det = to_detector(geom, clen_m=0.08)
    q0a1 = det.panel_index("q0a1")
    panel, fs, ss = locate_on_panels(det, [200.0, 10.0, 5000.0], [3.0, 190.0, 3.0])
    assert panel[0] == q0a1 and fs[0] == pytest.approx(200.5 - 194) and ss[0] == 3.5
    assert det.panels[panel[1]].ss0 == 185 and panel[2] == -1 and np.isnan(fs[2])


def test_bad_peak_files_are_named(tmp_path):
    path = tmp_path / "nopeaks.cxi"
    with h5py.File(path, "w") as f:
        f["/entry_1/result_1/nPeaks"] = np.array([3])
    with pytest.raises(PeakFileError, match="nopeaks.cxi: no CXI peak list"):
        read_cxi_peaks(path)
    write_cxi_peaks(path, [np.ones((2, 3))])
    with h5py.File(path, "a") as f:
        f["/entry_1/result_1/nPeaks"][0] = 9
    with pytest.raises(PeakFileError, match="nopeaks.cxi: nPeaks exceeds"):
        read_cxi_peaks(path)
