"""open_frames picks the reader from the run's files."""

from __future__ import annotations

import shutil

import pytest

from kernels.io.readers.base import ReaderError
from kernels.io.readers.cbf import CbfReader
from kernels.io.readers.hdf5_geom import Hdf5GeomReader
from kernels.io.readers.nexus import NexusReader
from kernels.io.readers.select import open_frames
from tests.kernels.io.readers.test_hdf5_geom import cspad_geom, write_cheetah_cxi
from tests.kernels.realdata import realdata


def test_each_kind_of_run_gets_its_reader(tmp_path):
    cbf_run = tmp_path / "cbf"
    cbf_run.mkdir()
    shutil.copy(realdata("cspad_thermolysin", "idx-20130301060858401.cbf"), cbf_run)
    with open_frames([cbf_run]) as reader:
        assert isinstance(reader, CbfReader) and len(reader) == 1
    master = realdata("nexus_masters", "DLS_Therm_6_2_master.nxs")
    with open_frames([master]) as reader:
        assert isinstance(reader, NexusReader)
    write_cheetah_cxi(tmp_path / "r.cxi", cspad_geom(), 2, {})
    with open_frames([tmp_path / "r.cxi"], cspad_geom()) as reader:
        assert isinstance(reader, Hdf5GeomReader) and len(reader) == 2


def test_runs_without_a_reader_are_named(tmp_path):
    write_cheetah_cxi(tmp_path / "r.cxi", cspad_geom(), 1, {})
    with pytest.raises(ReaderError, match="r.cxi: HDF5 frames need a CrystFEL geometry"):
        open_frames([tmp_path / "r.cxi"])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ReaderError, match=r"have no reader"):
        open_frames([tmp_path])
    with pytest.raises(ReaderError, match="nothere.cbf: no such file"):
        open_frames([tmp_path / "nothere.cbf"])


def test_euxfel_run_folder_gets_the_euxfel_reader():
    pytest.importorskip("extra_data")
    run = realdata("euxfel_mock_runs", "agipd1m_corr_r0142")
    geom = realdata("geometry_files", "euxfel_extra_geom", "agipd1m_nominal_from_quadpos.geom")
    with open_frames([run], str(geom)) as reader:
        assert type(reader).__name__ == "EuxfelReader" and len(reader) == 2048
    with pytest.raises(ReaderError, match="a EuXFEL run needs a CrystFEL geometry"):
        open_frames([run])
