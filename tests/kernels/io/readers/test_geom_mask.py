"""Bad pixels from a CrystFEL geometry: bad regions and the mask field it names, per panel,
and the chain leaving them out."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from kernels.foreign import process_frames
from kernels.io.geom import GeometryFileError
from kernels.io.readers.hdf5_geom import Hdf5GeomReader
from kernels.stages.pipeline import ProcessingParams
from tests.kernels.io.test_geom import SIMPLE

MASKED = SIMPLE + "photon_energy = 9500\nmask = /data/mask\nmask_good = 0x1\nmask_bad = 0x4\n"


def write_run(tmp_path, geom_text, mask_file=None):
    frames = np.random.default_rng(0).poisson(1.0, (2, 100, 100)).astype(np.float32)
    rr, cc = np.mgrid[-3:4, -3:4]
    frames[:, 57:64, 27:34] += 400 * np.exp(-(rr**2 + cc**2) / 2.0)  # a "spot" on a bad pixel
    mask = np.ones((100, 100), np.uint16)  # good bit everywhere
    mask[60, 30] |= 0x4  # bad bit
    mask[80, 70] = 0  # no good bit
    with h5py.File(tmp_path / "r.cxi", "w") as f:
        f["/data/data"] = frames
        if mask_file is None:
            f["/data/mask"] = mask
    if mask_file is not None:
        with h5py.File(tmp_path / mask_file, "w") as f:
            f["/data/mask"] = mask
    (tmp_path / "det.geom").write_text(geom_text)
    return tmp_path / "r.cxi", tmp_path / "det.geom"


@pytest.mark.parametrize("mask_file", [None, "badmap.h5"])
def test_bad_regions_and_mask_bits_mark_the_pixels(tmp_path, mask_file):
    text = MASKED + (f"mask_file = {mask_file}\n" if mask_file else "")
    cxi, geom = write_run(tmp_path, text, mask_file)
    with Hdf5GeomReader([cxi], geom) as reader:
        good = reader.good_pixels()
    assert good.shape == (2, 50, 100)
    bad = np.argwhere(~good)
    expected = {(0, ss, fs) for ss in range(5) for fs in range(10)}  # bad_corner, panel a
    expected |= {(1, 10, 30), (1, 30, 70)}  # panel b starts at ss 50
    assert {tuple(b) for b in bad} == expected


def test_masked_pixels_give_no_spot(tmp_path):
    """The bright blob is found on the detector, and not once a bad region covers it."""
    blob = (
        "bad_blob/min_fs = 25\nbad_blob/max_fs = 36\nbad_blob/min_ss = 55\nbad_blob/max_ss = 66\n"
    )
    params = ProcessingParams.from_dict({"hitfinder": {"min_spots": 1}})
    found = []
    for text in (MASKED, MASKED + blob):
        cxi, geom = write_run(tmp_path, text)
        with Hdf5GeomReader([cxi], geom) as reader:
            results, _ = process_frames(reader, params)
        found.append([r.n_spots for r in results])
    assert found == [[1, 1], [0, 0]]


def test_missing_mask_dataset_names_file_and_line(tmp_path):
    cxi, geom = write_run(tmp_path, MASKED.replace("/data/mask", "/data/nomask"))
    with (
        Hdf5GeomReader([cxi], geom) as reader,
        pytest.raises(
            GeometryFileError, match=r"det.geom:\d+: .*r.cxi has no mask dataset /data/nomask"
        ),
    ):
        reader.good_pixels()


def test_numbered_masks_of_crystfel_0_10_are_all_applied(tmp_path):
    """mask0 in the data file (good bit 0x1), mask1 in its own file (bad bit 0x2): a pixel is
    good only when both say so."""
    numbered = SIMPLE + "photon_energy = 9500\nmask0_data = /data/mask\nmask0_goodbits = 0x1\n"
    numbered += "mask1_file = extra.h5\nmask1_data = /flags\nmask1_badbits = 0x2\n"
    cxi, geom = write_run(tmp_path, numbered)
    flags = np.zeros((100, 100), np.uint8)
    flags[20, 40] = 0x2  # bad in mask1 (panel a)
    flags[90, 10] = 0x1  # a bit mask1 does not look at
    with h5py.File(tmp_path / "extra.h5", "w") as f:
        f["/flags"] = flags
    with Hdf5GeomReader([cxi], geom) as reader:
        good = reader.good_pixels()
    expected = {(0, ss, fs) for ss in range(5) for fs in range(10)}  # bad_corner, panel a
    expected |= {(1, 30, 70), (0, 20, 40)}  # no mask0 good bit; mask1 bad bit
    assert {tuple(b) for b in np.argwhere(~good)} == expected
