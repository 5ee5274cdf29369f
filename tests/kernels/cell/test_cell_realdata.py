"""Cell determination from real spots alone: the 150 LCLS CSPAD lysozyme stills (tetragonal
79.0/79.0/38.2 A), and the peaks of the real 5-HT2B (LCLS CSPAD) and photolyase (SwissFEL
Jungfrau 4M) CrystFEL streams (their orthorhombic cells)."""

from __future__ import annotations

import json

import h5py
import numpy as np

from kernels.cell.determination import DeterminationParams, determine_cell
from kernels.cell.fft_indexing import CellFreeError, CellFreeParams, index_cell_free
from kernels.cell.run_index import CELLFREE_FILE, HITS_FILE, write_cellfree, write_hit_spots
from kernels.crystal.detector import lab_to_s
from kernels.io.geom import read_geom
from tests.kernels.cell.test_cell_cli import in_process
from tests.kernels.io.test_crystfel_stream_geometry import crystals, on_panels
from tests.kernels.realdata import realdata


def reduced_cells(spot_sets, params: CellFreeParams) -> list[tuple[float, ...]]:
    cells = []
    for s in spot_sets:
        try:
            cells.append(index_cell_free(s, params)[0].reduced_cell)
        except CellFreeError:
            pass
    return cells


def test_lysozyme_cspad_spot_lists_give_the_tetragonal_cell():
    path = realdata("cspad_lysozyme_spots", "lysozyme_LD91_0-149.h5")
    with h5py.File(path) as f:
        wavelength = float(np.ravel(f["wavelength_A"][()])[0])
        image = f["reflections/expt_id"][:]
        lab = f["reflections/lab_mm_obs_sfxflow"][:]
    spots = [lab_to_s(lab[image == i], wavelength) for i in range(150)]
    cells = reduced_cells(spots, CellFreeParams(max_cell=150.0))
    result = determine_cell(cells)
    main = result.main
    print(
        f"lysozyme: {len(cells)}/150 indexed, {len(main.members)} in the cell {main.solution.cell}"
    )
    assert len(cells) >= 0.7 * 150
    assert main.solution.bravais.symbol == "tP"
    assert np.allclose(main.solution.cell[:3], (79.0, 79.0, 38.2), rtol=5e-3)
    assert "P 43 21 2" in main.space_groups()


def stream_spots(name: str, tmp_path) -> list[np.ndarray]:
    """Each crystal's peaks of a CrystFEL stream as scattering vectors (1/A), through the
    stream's embedded geometry, camera length and det_shift."""
    text = realdata("crystfel_streams", name).read_text()
    geom_text = text.split("----- Begin geometry file -----\n")[1].split("----- End geometry")[0]
    (tmp_path / "embedded.geom").write_text(geom_text)
    geom = read_geom(tmp_path / "embedded.geom")
    spots = []
    for wavelength, _, shift, clen, peaks, _ in crystals(text):
        fs, ss = (np.array([float(r[k]) for r in peaks]) for k in (0, 1))
        moved, idx, fs_local, ss_local = on_panels(geom, clen, shift, fs, ss, [r[4] for r in peaks])
        spots.append(lab_to_s(moved.lab_position(idx, fs_local, ss_local), wavelength))
    return spots


def test_photolyase_stream_peaks_give_the_orthorhombic_cell(tmp_path):
    spots = stream_spots("photolyase_swissfel_alvra_run19.stream", tmp_path)
    cells = reduced_cells(spots, CellFreeParams(max_cell=250.0, min_indexed=8))
    result = determine_cell(cells, DeterminationParams(min_images=5))
    main = result.main
    print(
        f"photolyase: {len(cells)}/{len(spots)} indexed, {len(main.members)} in {main.solution.cell}"
    )
    assert main.solution.bravais.symbol == "oP"
    assert np.allclose(main.solution.cell[:3], (70.2, 117.8, 170.5), rtol=1e-2)


def test_5ht2b_stream_peaks_give_the_c_centred_cell_pooled(tmp_path, capsys):
    """The 5-HT2B stills (14-47 peaks, 10-25 on the lattice) give no agreeing per-image cells
    (the c direction is rarely among a still's candidate vectors); `cell` then pools the hits'
    spots. CrystFEL indexed this stream only given the cell (indexamajig -p 5HT2B.cell)."""
    spots = stream_spots("5HT2B_lcls_cxi_xgandalf.stream", tmp_path)
    rows = []
    for i, s in enumerate(spots):  # what cell-index writes: per-image cells and every hit's spots
        try:
            lattice = index_cell_free(s, CellFreeParams(max_cell=250.0, min_indexed=8))[0]
        except CellFreeError:
            continue
        rows.append((0, i, 0, len(s), lattice.n_indexed, lattice.rms, *lattice.reduced_cell))
    results = tmp_path / "run"
    results.mkdir()
    write_cellfree(results / CELLFREE_FILE, rows)
    write_hit_spots(results / HITS_FILE, spots)
    code, out, err = in_process(
        capsys, "cell", "--results", str(results), "--out", str(tmp_path / "cell")
    )
    print(out)
    assert code == 0, err
    assert "(pooled)" in out
    main = json.loads((tmp_path / "cell" / "cell.json").read_text())["main"]
    assert main["bravais"] == "oC" and "C 2 2 21" in main["space_groups"]
    # the stream header's cell, and the median of CrystFEL's 32 refined crystals (61.52/122.60/
    # 168.81 A, given the header's cell as its target)
    assert np.allclose(main["cell"], (61.4, 122.6, 168.0, 90, 90, 90), rtol=5e-3)
    assert np.allclose(main["cell"][:3], (61.52, 122.60, 168.81), rtol=3e-3)
    assert main["distortion"]["angle_deg"] < 0.5  # the measured angles, before 90 is imposed
    assert main["images"] >= 28
