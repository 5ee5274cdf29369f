"""Simulated stills on any multi-panel detector (tilted, shifted panels, e.g. from a ``.geom``),
written as a facility would: calibrated photons in a compressed CXI file beside its CrystFEL
geometry, with the truth of every shot.

The same renderer as the flat runs (:class:`~facility.beamline.simulate.Renderer`) draws on the
detector laid out as a :class:`~kernels.crystal.panel_image.PanelImage`, so a spot lands where
the ray s0 + U B h meets its panel, to rounding. Files in ``out``:

* ``data/r0001.cxi`` (the run's folder) — ``/entry_1/data_1/data`` (events, panels, rows, cols) float32 photons,
  bitshuffle-LZ4, and ``/entry_1/photon_energy_eV`` per event;
* ``detector.geom`` — the detector (``dim1`` = panel), photon energy from the file;
* ``truth.h5`` — per event ``hit``, ``U``, ``A``, ``wavelength``; ``spots/`` the visible
  reflections (event, hkl, panel, fs, ss, expected photons, partiality);
* ``truth.mtz`` — the crystal's true intensities (as a flat run's ``truth/truth.mtz``).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from facility.beamline.crystal_model import make_crystal, write_truth_mtz
from facility.beamline.detector_model import DetectorModel
from facility.beamline.simulate import Renderer, SimulationParams
from kernels.crystal.detector import Detector, axis_rotation
from kernels.crystal.panel_image import PanelImage
from kernels.io.geom import write_geom
from kernels.io.geom_detector import from_detector
from kernels.io.runformat import HC_EV_ANGSTROM

DATA = "/entry_1/data_1/data"
ENERGY = "/entry_1/photon_energy_eV"


def simulate_panel_run(
    out, detector: Detector, images: int, seed: int = 0, params: SimulationParams | None = None
) -> Path:
    """Write `images` stills on the stacked `detector` into `out`; returns the run's folder."""
    import hdf5plugin

    params = params or SimulationParams()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    layout = PanelImage(detector)
    crystal = make_crystal(params.cell, params.space_group, params.d_min, seed, params.n_atoms)
    model = DetectorModel.generate(layout, np.random.default_rng([seed, 1]))
    renderer = Renderer(crystal, model, params)
    rng = np.random.default_rng([seed, 2])
    shots = [renderer.photon_shot(rng) for _ in range(images)]
    frames = np.stack([layout.frame(image) for image, _, _ in shots]).astype(np.float32)
    wavelengths = np.array([w for _, w, _ in shots])
    (out / "data").mkdir(exist_ok=True)
    with h5py.File(out / "data" / "r0001.cxi", "w") as f:
        f.create_dataset(
            DATA, data=frames, chunks=(1, *frames.shape[1:]), **hdf5plugin.Bitshuffle(cname="lz4")
        )
        f[ENERGY] = HC_EV_ANGSTROM / wavelengths
    geom = from_detector(detector, str(out / "detector.geom"), DATA)
    geom.globals["photon_energy"] = ENERGY
    write_geom(geom, out / "detector.geom")
    with h5py.File(out / "truth.h5", "w") as f:
        f["hit"] = np.array([t["hit"] for _, _, t in shots])
        f["U"] = np.stack([t["U"] for _, _, t in shots])
        f["A"] = np.stack([t["A"] for _, _, t in shots])
        f["wavelength"] = wavelengths
        write_spots(f.create_group("spots"), layout, crystal.hkl, shots)
    write_truth_mtz(out / "truth.mtz", crystal)
    return out / "data"


def write_spots(group, layout: PanelImage, hkl: np.ndarray, shots) -> None:
    """The visible reflections of every shot (>= 5 expected photons): event, h, k, l, panel,
    fs, ss (panel pixels, corners at integers), expected photons, partiality."""
    rows: list[list[np.ndarray]] = [[] for _ in range(9)]
    for event, (_, _, truth) in enumerate(shots):
        if truth["spots"] is None:
            continue
        idx, part, col, row, photons = truth["spots"]
        keep = photons >= 5.0
        panel, fs, ss = layout.locate(col[keep], row[keep])
        columns = (np.full(keep.sum(), event), *hkl[idx[keep]].T, panel, fs, ss)
        for out, values in zip(rows, (*columns, photons[keep], part[keep])):
            out.append(values)
    names = ("event", "h", "k", "l", "panel", "fs", "ss", "photons", "partiality")
    for name, parts in zip(names, rows):
        group[name] = np.concatenate(parts) if parts else np.zeros(0)


def tilted(
    detector: Detector, mrad: float = 3.0, shift_mm: float = 0.2, distance_mm=None, seed: int = 3
) -> Detector:
    """`detector` with each panel tilted by `mrad` about a random axis through its centre and
    shifted by ~`shift_mm` (rms per axis); first moved along z so its panels' mean distance is
    `distance_mm` when given (a facility file's camera length may live in its data)."""
    rng = np.random.default_rng(seed)
    if distance_mm is not None:
        shift = (0.0, 0.0, distance_mm - float(np.mean(detector.corners[:, 2])))
        for p in detector.panels:
            detector = detector.moved(p.name, np.eye(3), shift)
    for p in detector.panels:
        centre = np.asarray(p.corner) + np.asarray(p.fast) * (p.fs1 - p.fs0) / 2
        centre += np.asarray(p.slow) * (p.ss1 - p.ss0) / 2
        R = axis_rotation(rng.standard_normal(3), np.degrees(mrad / 1000.0))
        detector = detector.moved(p.name, R, rng.normal(0.0, shift_mm, 3), centre)
    return detector
