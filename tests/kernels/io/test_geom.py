"""CrystFEL geometry files: every real one parses and round-trips; broken ones name the line."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.crystal.detector import Detector
from kernels.io.geom import GeometryFileError, read_geom, write_geom
from kernels.io.geom_detector import (
    bad_pixel_masks,
    check_data_shape,
    from_detector,
    to_detector,
)
from tests.kernels.realdata import REALDATA, realdata

GEOM_FILES = sorted((REALDATA / "geometry_files").rglob("*.geom"))
SIMPLE = """clen = 0.1
res = 10000
data = /data/data
dim0 = %
dim1 = ss
dim2 = fs
a/min_fs = 0
a/max_fs = 99
a/min_ss = 0
a/max_ss = 49
a/corner_x = -50
a/corner_y = -60
a/fs = x
a/ss = y
b/min_fs = 0
b/max_fs = 99
b/min_ss = 50
b/max_ss = 99
b/corner_x = -50
b/corner_y = 5
b/fs = +0.999x +0.002y -0.01z
b/ss = -0.002x +0.999y
b/coffset = 0.001
rigid_group_both = a,b
rigid_group_collection_all = both
bad_corner/min_fs = 0
bad_corner/max_fs = 9
bad_corner/min_ss = 0
bad_corner/max_ss = 4
"""


def test_real_geometry_files_are_present():
    realdata("geometry_files")
    assert len(GEOM_FILES) >= 14


@pytest.mark.parametrize("path", GEOM_FILES, ids=lambda p: p.name)
def test_every_real_geometry_file_reads_writes_and_reads_back_identical(path, tmp_path):
    geom = read_geom(path)
    write_geom(geom, tmp_path / "out.geom")
    again = read_geom(tmp_path / "out.geom")
    assert again == geom and len(geom.panels) >= 1
    # clen_m stands in where the file names a data field (LCLS encoder) for the distance
    detector = to_detector(geom, clen_m=0.1)
    assert np.array_equal(detector.corners, to_detector(again, clen_m=0.1).corners)


def write(tmp_path, text):
    path = tmp_path / "broken.geom"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "change, line, message",
    [
        (("a/corner_y = -60", "a/cornr_y = -60"), 12, "unknown panel key a/cornr_y"),
        (("res = 10000", "resolution = 10000"), 2, "unknown key 'resolution'"),
        (("b/min_ss = 50", "b/min_ss = 40"), 15, "panel b overlaps panel a"),
        (("a/fs = x", "a/fs = 1x + q"), 13, "is not a vector"),
        (("a/max_fs = 99", "a/max_fs = ninety"), 8, "is not a whole number"),
        (("rigid_group_both = a,b", "rigid_group_both = a,c"), 24, "unknown members ['c']"),
        (("a/corner_x = -50\n", ""), 7, "panel a lacks corner_x"),
    ],
)
def test_broken_geometry_names_file_and_line(tmp_path, change, line, message):
    path = write(tmp_path, SIMPLE.replace(*change))
    with pytest.raises(GeometryFileError) as err:
        read_geom(path)
    assert str(err.value).startswith(f"{path}:{line}: ") and message in str(err.value)


def test_panel_outside_the_data_names_the_line(tmp_path):
    geom = read_geom(write(tmp_path, SIMPLE))
    detector = to_detector(geom)
    check_data_shape(geom, detector, 0, (100, 100))
    with pytest.raises(GeometryFileError, match=r"broken.geom:18: panel b: max_ss = 99 is outside"):
        check_data_shape(geom, detector, 0, (90, 100))


def test_simple_file_gives_the_stated_pixels_groups_and_masks(tmp_path):
    geom = read_geom(write(tmp_path, SIMPLE))
    det = to_detector(geom)
    b = det.panel_index("b")
    # CrystFEL: x = (corner_x + fs * fs_x + ss * ss_x) / res, z = clen + coffset + fs * fs_z / res
    fs, ss = 10.0, 20.0
    want = [(-50 + 0.999 * fs - 0.002 * ss) / 10, (5 + 0.002 * fs + 0.999 * ss) / 10]
    want.append(101.0 - 0.01 * fs / 10)
    assert np.allclose(det.lab_position(b, fs, ss), want, atol=1e-12)
    assert det.panels[b].ss0 == 50 and det.panels[b].fs1 == 100
    assert det.group_panels("rigid_group_collection_all") == ["a", "b"]
    (mask,) = bad_pixel_masks(geom, det, [(100, 100)])
    assert mask[:5, :10].all() and mask.sum() == 50


def test_detector_written_as_geometry_comes_back(tmp_path):
    geom = read_geom(write(tmp_path, SIMPLE))
    det = to_detector(geom).moved("rigid_group_both", np.eye(3), (0.3, -0.2, 1.5))
    write_geom(from_detector(det), tmp_path / "det.geom")
    back = to_detector(read_geom(tmp_path / "det.geom"))
    assert isinstance(back, Detector) and back.groups == det.groups
    for name in ("corners", "fast", "slow"):
        assert np.abs(getattr(back, name) - getattr(det, name)).max() < 1e-12


def test_bad_regions_in_lab_pixels_mask_the_beamstop():
    geom = read_geom(realdata("geometry_files", "crystfel_examples", "pilatus.geom"))
    with pytest.raises(GeometryFileError, match=r"pilatus.geom:3: panel 0: clen is the data field"):
        to_detector(geom)
    det = to_detector(geom, clen_m=0.2)
    (mask,) = bad_pixel_masks(geom, det, [(2527, 2463)])
    p = det.panels[0]
    ss, fs = np.mgrid[0:2527, 0:2463]
    lab = det.lab_position(0, fs + 0.5, ss + 0.5) / p.pixel_size_mm
    beamstop = (lab[..., 0] >= -2000) & (lab[..., 0] <= 100)
    beamstop &= (lab[..., 1] >= -40) & (lab[..., 1] <= 100)
    assert beamstop.sum() > 1000 and mask[beamstop].all()


def test_agipd_geometry_matches_extra_geom_pixel_by_pixel():
    extra_geom = pytest.importorskip("extra_geom")
    path = realdata("geometry_files", "euxfel_extra_geom", "agipd1m_nominal_from_quadpos.geom")
    det = to_detector(read_geom(path))
    theirs = extra_geom.AGIPD_1MGeometry.from_crystfel_geom(str(path)).get_pixel_positions()
    worst = 0.0
    for i, p in enumerate(det.panels):
        ss, fs = np.mgrid[0 : p.ss1 - p.ss0, 0 : p.fs1 - p.fs0]
        ours = det.lab_position(i, fs + 0.5, ss + 0.5)
        ref = theirs[p.block, p.ss0 : p.ss1, p.fs0 : p.fs1] * 1000.0  # m -> mm, pixel centres
        # EXtra-geom leaves z at the panels' own offsets, without clen
        worst = max(worst, np.abs(ours[..., :2] - ref[..., :2]).max())
        assert np.allclose(ours[..., 2] - 121.7, ref[..., 2], atol=1e-9)
    assert len(det.panels) == 128 and worst < 1e-9


@pytest.mark.parametrize(
    "kind, metrology, quadrants, tolerance_mm",
    [
        # quadrant positions of EXtra-geom's documentation examples
        (
            "LPD_1MGeometry",
            "lpd_mar_18.h5",
            [(11.4, 299), (-11.5, 8), (254.5, -16), (278.5, 275)],
            1e-9,
        ),
        # DSSC's hexagonal pixels: CrystFEL's rectangles sit up to half a pixel (0.118 mm) off
        (
            "DSSC_1MGeometry",
            "dssc_geo_june19.h5",
            [(-130, 5), (-130, -125), (5, -125), (5, 5)],
            0.1181,
        ),
    ],
)
def test_euxfel_metrology_through_a_geom_file_matches_extra_geom(
    tmp_path, kind, metrology, quadrants, tolerance_mm
):
    extra_geom = pytest.importorskip("extra_geom")
    path = realdata("geometry_files", "euxfel_extra_geom", metrology)
    theirs = getattr(extra_geom, kind).from_h5_file_and_quad_positions(str(path), quadrants)
    theirs.write_crystfel_geom(
        str(tmp_path / "det.geom"), photon_energy=9300, clen=0.2, adu_per_ev=1
    )
    det = to_detector(read_geom(tmp_path / "det.geom"))
    positions = theirs.get_pixel_positions() * 1000.0
    worst = 0.0
    for i, p in enumerate(det.panels):
        ss, fs = np.mgrid[0 : p.ss1 - p.ss0, 0 : p.fs1 - p.fs0]
        ours = det.lab_position(i, fs + 0.5, ss + 0.5)[..., :2]
        worst = max(
            worst, np.abs(ours - positions[p.block, p.ss0 : p.ss1, p.fs0 : p.fs1, :2]).max()
        )
    assert worst < tolerance_mm


def test_nested_groups_written_from_a_detector_come_back(tmp_path):
    """CrystFEL 0.10's group_ hierarchy (CSPAD: ASIC -> module -> quadrant) survives
    from_detector -> write -> read."""
    geom = read_geom(realdata("geometry_files", "crystfel_examples", "cspad-cxiformat.geom"))
    det = to_detector(geom, clen_m=0.1)
    assert any(m in det.groups for members in det.groups.values() for m in members)
    write_geom(from_detector(det), tmp_path / "det.geom")
    back = to_detector(read_geom(tmp_path / "det.geom"))
    assert back.groups == det.groups
    assert np.abs(back.corners - det.corners).max() < 1e-9
