"""LCLS-II XTC2 files (the shared Jungfrau 0.5M and epix10ka quad runs) read through psana:
frames, event ids and panels against what psana itself reports, and the clear errors of a
truncated or foreign file, a missing geometry, a geometry off the data, and raw frames."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import numpy as np
import psana  # the xtc2 extra, installed by make test (make install-xtc2)
import pytest

from kernels.__main__ import main
from kernels.crystal.detector import Detector, Panel
from kernels.io.geom import GeometryFileError, write_geom
from kernels.io.geom_detector import from_detector
from kernels.io.readers.base import FrameId, ReaderError
from kernels.io.readers.select import open_frames
from kernels.io.readers.xtc2 import Xtc2Reader, dgram_count
from tests.kernels.realdata import realdata

FILES = {"jungfrau": "test_jungfrau05M_calib.xtc2", "epixquad": "test_epix_calib.xtc2"}
PHOTON_ENERGY_EV = 9500.0


@dataclasses.dataclass
class PsanaView:
    """What psana itself reports for a file: raw frames, time stamps, pixel centres (mm)."""

    path: str
    raw: list[np.ndarray]
    stamps: list[int]
    centres: np.ndarray  # (segments, rows, cols, 3), psana's lab frame
    asics: tuple  # first (row, col) of each ASIC in a segment
    asic_shape: tuple[int, int]
    pixel_mm: float


@pytest.fixture(scope="module", params=sorted(FILES))
def view(request) -> PsanaView:
    from psana.pscalib.geometry.UtilsPSF import CFRAME_LAB

    path = str(realdata("lcls2_xtc2", FILES[request.param]))
    run = next(psana.DataSource(files=path, skip_calib_load="all").runs())
    det = run.Detector(request.param)
    raw, stamps = [], []
    for evt in run.events():
        raw.append(det.raw.raw(evt).copy())
        stamps.append(int(evt.timestamp))
    geo = det.raw._det_geo()  # psana's default (design) geometry: no calibration database
    seg = geo.get_seg_geo().algo
    xyz = np.stack(geo.get_pixel_coords(cframe=CFRAME_LAB), axis=-1) / 1000.0
    return PsanaView(
        path,
        raw,
        stamps,
        xyz.reshape(raw[0].shape + (3,)),
        tuple(seg.asic0indices()),
        tuple(seg.asic_rows_cols()),
        seg.pixel_scale_size() / 1000.0,
    )


def psana_detector(v: PsanaView) -> Detector:
    """One panel per ASIC of every segment, placed by psana's pixel centres. The ASICs' edge
    pixels are psana's wide pixels, so the panel is set from the first interior pixel."""
    rows, cols = v.asic_shape
    panels = []
    for s, c in enumerate(v.centres):
        for a, (r0, c0) in enumerate(v.asics):
            inner = c[r0 + 1, c0 + 1]
            fast, slow = c[r0 + 1, c0 + 2] - inner, c[r0 + 2, c0 + 1] - inner
            corner = inner - 1.5 * fast - 1.5 * slow
            vec = [tuple(map(float, x)) for x in (corner, fast, slow)]
            panels.append(Panel(f"s{s}a{a}", *vec, c0, c0 + cols, r0, r0 + rows, block=s))
    return Detector(tuple(panels))


def geometry_file(tmp_path, v: PsanaView, stacked_along_ss: bool = False) -> str:
    """A CrystFEL geometry of psana's layout: one segment per fixed index, or (as OM and psana's
    converter write it) the segments stacked along ss."""
    detector = psana_detector(v)
    if stacked_along_ss:
        rows = v.raw[0].shape[1]
        shift = [
            dataclasses.replace(p, ss0=p.ss0 + p.block * rows, ss1=p.ss1 + p.block * rows, block=0)
            for p in detector.panels
        ]
        detector = Detector(tuple(shift))
    geom = from_detector(detector, str(tmp_path / "det.geom"))
    geom.globals["photon_energy"] = f"{PHOTON_ENERGY_EV} eV"
    write_geom(geom, tmp_path / "det.geom")
    return str(tmp_path / "det.geom")


@pytest.mark.parametrize("stacked_along_ss", [False, True])
def test_frames_and_event_ids_are_psanas(view, tmp_path, stacked_along_ss):
    geom = geometry_file(tmp_path, view, stacked_along_ss)
    with open_frames([view.path], geom) as reader:
        assert isinstance(reader, Xtc2Reader)
        assert len(reader) == len(view.raw) == 2
        assert reader.events == [FrameId(view.path, 0), FrameId(view.path, 1)]
        assert reader.timestamps == view.stamps
        panels = psana_detector(view).panels
        for i, raw in enumerate(view.raw):
            frame = reader.frame(i)
            assert frame.shape == (len(panels), *view.asic_shape)
            for k, p in enumerate(panels):
                np.testing.assert_array_equal(frame[k], raw[p.block, p.ss0 : p.ss1, p.fs0 : p.fs1])
        assert not np.array_equal(reader.frame(0), reader.frame(1))  # back again: reopened
        assert reader.wavelength(1) == pytest.approx(12398.419843 / PHOTON_ENERGY_EV)
        assert "raw ADU" in reader.raw_statement


def test_a_run_of_several_files_is_read_in_name_order(view, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("r0001-s001.xtc2", "r0001-s000.xtc2"):
        shutil.copy(view.path, run / name)
    with open_frames([run], geometry_file(tmp_path, view)) as reader:
        assert [(Path(e.file).name, e.event) for e in reader.events] == [
            ("r0001-s000.xtc2", 0),
            ("r0001-s000.xtc2", 1),
            ("r0001-s001.xtc2", 0),
            ("r0001-s001.xtc2", 1),
        ]
        assert reader.timestamps == view.stamps * 2
        np.testing.assert_array_equal(reader.frame(3), reader.frame(1))


def test_panels_sit_at_psanas_pixel_centres(view, tmp_path):
    with Xtc2Reader([view.path], geometry_file(tmp_path, view)) as reader:
        rows, cols = view.asic_shape
        ss, fs = np.mgrid[1 : rows - 1, 1 : cols - 1]  # psana's wide pixels are the edges
        for k, (s, (r0, c0)) in enumerate(
            (s, a) for s in range(len(view.raw[0])) for a in view.asics
        ):
            ours = reader.detector.lab_position(
                np.full(ss.size, k), fs.ravel() + 0.5, ss.ravel() + 0.5
            )
            theirs = view.centres[s, r0 + 1 : r0 + rows - 1, c0 + 1 : c0 + cols - 1].reshape(-1, 3)
            assert np.abs(ours - theirs).max() < 1e-6 * view.pixel_mm


def test_truncated_foreign_and_empty_files_are_refused(view, tmp_path):
    assert dgram_count(view.path) > len(view.raw)  # configure, begin run, ... and the events
    data = open(view.path, "rb").read()
    cases = {"cut.xtc2": data[: len(data) - 1000], "noise.xtc2": bytes(range(256)) * 20}
    cases["empty.xtc2"] = b""
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ReaderError, match=f"{name}: .*(truncated|empty)"):
            Xtc2Reader([str(tmp_path / name)], geometry_file(tmp_path, view))


def test_missing_geometry_and_a_geometry_off_the_data_are_named(view, tmp_path):
    with pytest.raises(ReaderError, match="XTC2 files need a CrystFEL geometry"):
        open_frames([view.path])
    geom = geometry_file(tmp_path, view)
    text = open(geom).read()  # the first panel moved below the data
    bad = re.sub(r"min_ss = \d+", "min_ss = 4000", text, count=1)
    bad = re.sub(r"max_ss = \d+", f"max_ss = {3999 + view.asic_shape[0]}", bad, count=1)
    (tmp_path / "bad.geom").write_text(bad)
    with pytest.raises(GeometryFileError, match=r"bad\.geom:\d+: .*outside the data"):
        Xtc2Reader([view.path], str(tmp_path / "bad.geom"))
    if len(view.raw[0]) > 1:  # one segment per fixed index: a segment the data lack
        (tmp_path / "bad.geom").write_text(re.sub(r"dim1 = \d+", "dim1 = 7", text, count=1))
        with pytest.raises(GeometryFileError, match=r"bad\.geom:\d+: .*segment 7 is not in"):
            Xtc2Reader([view.path], str(tmp_path / "bad.geom"))


def test_cli_refuses_raw_frames_and_names_the_missing_geometry(view, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(view.path, run)
    out = str(tmp_path / "out")
    assert main(["process", "--run", str(run), "--out", out]) == 2
    assert "XTC2 files need a CrystFEL geometry (--geometry)" in capsys.readouterr().err
    geom = geometry_file(tmp_path, view)
    assert main(["process", "--run", str(run), "--geometry", geom, "--out", out]) == 2
    err = capsys.readouterr().err
    assert "raw ADU" in err and "nothing processed" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "summary.json").exists()
