"""A EuXFEL AGIPD run layout (extra-data's mock) read with the EXtra-geom AGIPD geometry."""

from __future__ import annotations

import pytest

from kernels.io.readers.base import ReaderError
from tests.kernels.realdata import realdata


def test_agipd_run_frames_are_trains_times_pulses():
    pytest.importorskip("extra_data")
    from kernels.io.readers.euxfel import EuxfelReader

    run = realdata("euxfel_mock_runs", "agipd1m_corr_r0142")
    geom = realdata("geometry_files", "euxfel_extra_geom", "agipd1m_nominal_from_quadpos.geom")
    with EuxfelReader(run, str(geom)) as reader:
        assert len(reader) == 64 * 32
        assert reader.train_and_pulse(33) == (10001, 1)
        frame = reader.frame(33)
        assert frame.shape == (128, 64, 128)
        assert reader.wavelength(0) == pytest.approx(12398.419843 / 9300)
    with pytest.raises(ReaderError, match="not a EuXFEL run"):
        EuxfelReader(run.parent.parent / "nexus_masters", str(geom))
