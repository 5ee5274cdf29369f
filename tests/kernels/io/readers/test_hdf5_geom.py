"""HDF5/CXI frames through a CrystFEL geometry, written here with hdf5plugin compression."""

from __future__ import annotations

import h5py
import hdf5plugin
import numpy as np
import pytest

from kernels.io.geom import GeometryFileError, read_geom
from kernels.io.readers.base import ReaderError
from kernels.io.readers.hdf5_geom import Hdf5GeomReader
from tests.kernels.io.test_geom import SIMPLE
from tests.kernels.realdata import REALDATA, realdata


def cspad_geom():
    return read_geom(realdata("geometry_files", "crystfel_examples", "cspad-cxiformat.geom"))


def data_shape(geom):
    ss = max(int(v["max_ss"]) for v in geom.panels.values()) + 1
    fs = max(int(v["max_fs"]) for v in geom.panels.values()) + 1
    return ss, fs


def write_cheetah_cxi(path, geom, frames, compression, shape=None):
    """A Cheetah-style CXI file: (events, ss, fs) stack, LCLS encoder and photon energy."""
    shape = shape or data_shape(geom)
    data = np.random.default_rng(len(str(path))).integers(0, 3000, (frames, *shape), dtype=np.int16)
    with h5py.File(path, "w") as f:
        f.create_dataset("/entry_1/data_1/data", data=data, chunks=(1, *shape), **compression)
        f["/LCLS/detector_1/EncoderValue"] = -500.0 + 20.0  # mm, as the LCLS encoder reads
        f["/LCLS/photon_energy_eV"] = np.linspace(9500, 9510, frames)
    return data


@pytest.mark.parametrize(
    "compression",
    [hdf5plugin.Bitshuffle(cname="lz4"), hdf5plugin.Zstd(clevel=3)],
    ids=["bitshuffle-lz4", "zstd"],
)
def test_compressed_cxi_frames_follow_the_geometry(tmp_path, compression):
    geom = cspad_geom()
    a = write_cheetah_cxi(tmp_path / "r1.cxi", geom, 3, dict(compression))
    b = write_cheetah_cxi(tmp_path / "r2.cxi", geom, 2, dict(compression))
    with h5py.File(tmp_path / "r1.cxi") as f:
        plist = f["/entry_1/data_1/data"].id.get_create_plist()
        assert plist.get_filter(0)[0] == dict(compression)["compression"]  # the plugin's id
    with Hdf5GeomReader([tmp_path / "r1.cxi", tmp_path / "r2.cxi"], geom) as reader:
        assert len(reader) == 5 and reader.events[3].event == 0
        assert reader.events[3].file.endswith("r2.cxi")
        frame = reader.frame(4)
        assert frame.shape == (64, 185, 194)
        q0a1 = reader.detector.panel_index("q0a1")
        assert np.array_equal(frame[q0a1], b[1, 0:185, 194:388])
        assert np.array_equal(reader.frame(0)[0], a[0, 0:185, 0:194])
        assert reader.wavelength(2) == pytest.approx(12398.419843 / 9510)
        # clen from the encoder (mm) + coffset (m): 0.573224 - 0.48 m
        assert reader.detector.corners[0, 2] == pytest.approx(1000 * (0.573224 - 0.480))


def test_missing_dataset_names_file_and_geometry_line(tmp_path):
    geom = cspad_geom()
    with h5py.File(tmp_path / "empty.cxi", "w") as f:
        f["/LCLS/detector_1/EncoderValue"] = -480.0
        f["/other"] = np.zeros(3)
    with pytest.raises(
        GeometryFileError, match=r"cspad-cxiformat.geom:\d+: .*empty.cxi has no dataset"
    ):
        Hdf5GeomReader([tmp_path / "empty.cxi"], geom)


def test_data_smaller_than_the_geometry_is_refused(tmp_path):
    geom = cspad_geom()
    ss, fs = data_shape(geom)
    write_cheetah_cxi(tmp_path / "small.cxi", geom, 1, {}, shape=(ss, fs - 10))
    with pytest.raises(
        GeometryFileError, match=r"cspad-cxiformat.geom:\d+: panel .* outside the data"
    ):
        Hdf5GeomReader([tmp_path / "small.cxi"], geom)


def test_missing_field_and_unreadable_file_are_named(tmp_path):
    geom = cspad_geom()
    (tmp_path / "junk.cxi").write_bytes(b"no hdf5 here")
    with pytest.raises(ReaderError, match="junk.cxi: not a readable HDF5 file"):
        Hdf5GeomReader([tmp_path / "junk.cxi"], geom)
    with h5py.File(tmp_path / "noclen.cxi", "w") as f:
        f["/entry_1/data_1/data"] = np.zeros((1, 4, 4))
    with pytest.raises(ReaderError, match="noclen.cxi: the field /LCLS/detector_1/EncoderValue"):
        Hdf5GeomReader([tmp_path / "noclen.cxi"], geom)


def test_module_stacked_layout_reads_each_module(tmp_path):
    """AGIPD as EXtra-geom writes it: dim1 is the module, (%, module, ss, fs)."""
    path = realdata("geometry_files", "euxfel_extra_geom", "agipd1m_nominal_from_quadpos.geom")
    geom = read_geom(path)
    data = np.random.default_rng(3).random((2, 16, 512, 128), dtype=np.float32)
    with h5py.File(tmp_path / "agipd.h5", "w") as f:
        f.create_dataset("/entry_1/instrument_1/detector_1/data", data=data, **hdf5plugin.LZ4())
    with Hdf5GeomReader([tmp_path / "agipd.h5"], geom) as reader:
        frame = reader.frame(1)
        assert len(reader) == 2 and frame.shape == (128, 64, 128)
        assert np.array_equal(frame[reader.detector.panel_index("p3a5")], data[1, 3, 320:384, :])
        assert reader.wavelength(0) == pytest.approx(12398.419843 / 9300)


GEOM_FILES = sorted((REALDATA / "geometry_files").rglob("*.geom"))


def layout_shape(geom, frames: int) -> dict[str, tuple]:
    """Dataset shape per data path that the panels' dim layout and ranges need."""
    shapes: dict[str, list] = {}
    for v in geom.panels.values():
        dims = [v[f"dim{i}"] for i in range(10) if f"dim{i}" in v] or ["%", "ss", "fs"]
        size = {"%": frames, "ss": int(float(v["max_ss"])) + 1, "fs": int(float(v["max_fs"])) + 1}
        want = [size[d] if d in size else int(d) + 1 for d in dims]
        have = shapes.setdefault(v.get("data", "/data/data"), want)
        shapes[v.get("data", "/data/data")] = [max(a, b) for a, b in zip(have, want)]
    return {k: tuple(s) for k, s in shapes.items()}


@pytest.mark.parametrize("path", GEOM_FILES, ids=lambda p: p.name)
def test_every_real_layout_reads_back_its_panels(tmp_path, path):
    geom = read_geom(path)
    if (
        len(
            {
                (
                    int(float(v["max_ss"])) - int(float(v["min_ss"])),
                    int(float(v["max_fs"])) - int(float(v["min_fs"])),
                )
                for v in geom.panels.values()
            }
        )
        > 1
    ):
        pytest.skip(f"{path.name}: panels of different sizes cannot be stacked")
    for v in geom.panels.values():
        v.setdefault("data", "/data/data")  # files that leave the data path to the program
    rng = np.random.default_rng(0)
    arrays = {}
    with h5py.File(tmp_path / "frames.h5", "w") as f:
        for name, shape in layout_shape(geom, 1).items():
            arrays[name] = rng.integers(0, 60000, shape, dtype=np.uint16)
            f.create_dataset(name, data=arrays[name], **hdf5plugin.Bitshuffle(cname="lz4"))
        for field in {v.get("clen", geom.globals.get("clen", "")) for v in geom.panels.values()}:
            if field.startswith("/"):
                f[field] = 100.0
    with Hdf5GeomReader([tmp_path / "frames.h5"], geom) as reader:
        frame = reader.frame(0)
        for i, (values, panel) in enumerate(zip(geom.panels.values(), reader.panels)):
            dims = [values[f"dim{k}"] for k in range(10) if f"dim{k}" in values] or [
                "%",
                "ss",
                "fs",
            ]
            where = {"%": 0, "ss": slice(panel.ss0, panel.ss1), "fs": slice(panel.fs0, panel.fs1)}
            expected = arrays[values["data"]][
                tuple(where[d] if d in where else int(d) for d in dims)
            ]
            assert np.array_equal(frame[i], expected)


def test_crystfel_defaults_units_and_shift(tmp_path):
    """No data line reads /data/data; clen field with a unit; wavelength in A; detector shift."""
    header = "clen = /geometry/clen m\nwavelength = /beam/lambda A\ndetector_shift_x = 2 mm\n"
    panels = SIMPLE.split("dim2 = fs\n", 1)[1]  # the test geometry's panels, no data line
    (tmp_path / "d.geom").write_text(header + "res = 10000\n" + panels)
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["/data/data"] = np.arange(2 * 100 * 100).reshape(2, 100, 100)
        f["/geometry/clen"] = 0.25
        f["/beam/lambda"] = [1.1, 1.2]
    with Hdf5GeomReader([tmp_path / "f.h5"], str(tmp_path / "d.geom")) as reader:
        assert len(reader) == 2 and reader.frame(1)[0, 0, 0] == 100 * 100
        assert reader.wavelength(1) == pytest.approx(1.2)
        # corner (-50, -60) px of 0.1 mm, shifted 2 mm in x; clen 0.25 m
        assert np.allclose(reader.detector.panels[0].corner, (-5.0 + 2.0, -6.0, 250.0))
