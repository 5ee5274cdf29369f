"""A 4 Mpix multi-panel run cut from a real detector geometry, for the dashboard's frame viewer.

The simulator's detector is one 1 Mpix plane; the viewer's speed goal is about a 4 Mpix
multi-panel frame. So this takes the ``modules`` panels nearest the beam of a real CrystFEL
geometry (by default SwissFEL's Jungfrau 16M: 8 modules of 514 × 1030 pixels with their real
tilts = 4.2 Mpix), stacks them in one data block, and writes frames in photons: Poisson
background and Gaussian spots at random places, as ``frames.h5`` + ``detector.geom`` (the
layout ``open_frames`` reads with :class:`~kernels.io.readers.hdf5_geom.Hdf5GeomReader`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np

from kernels.io.geom import GeomFile, read_geom, write_geom
from kernels.io.geom_detector import to_detector

# keys of the source file that point at files or regions this run does not have
DROPPED_GLOBALS = ("mask_file", "mask", "mask_good", "mask_bad")
DATA_PATH = "/data/data"


def nearest_panels(geom: GeomFile, modules: int) -> list[str]:
    """The ``modules`` panels whose centres are nearest the beam, in file order."""
    detector = to_detector(geom)
    centres = [
        detector.lab_position(i, (p.fs1 - p.fs0) / 2, (p.ss1 - p.ss0) / 2)
        for i, p in enumerate(detector.panels)
    ]
    distance = [float(np.hypot(c[0], c[1])) for c in centres]
    chosen = {detector.panels[i].name for i in np.argsort(distance)[:modules]}
    return [name for name in geom.panels if name in chosen]


def tiled_geom(geom: GeomFile, names: list[str], photon_energy_ev: float) -> GeomFile:
    """The chosen panels stacked in one block (ss ranges renumbered), nothing else of the file."""
    panels, row = {}, 0
    for name in names:
        values = dict(geom.panels[name])
        rows = int(float(values["max_ss"])) - int(float(values["min_ss"])) + 1
        values.update(min_ss=str(row), max_ss=str(row + rows - 1))
        panels[name] = {k: v for k, v in values.items() if k not in DROPPED_GLOBALS}
        row += rows
    kept = {k: v for k, v in geom.globals.items() if k not in DROPPED_GLOBALS}
    kept.update(data=DATA_PATH, photon_energy=f"{photon_energy_ev:g} eV")
    return dataclasses.replace(geom, globals=kept, panels=panels, bad_regions={}, groups={})


def frames_in_photons(shape: tuple[int, int], events: int, spots: int, seed: int) -> np.ndarray:
    """``events`` frames (float32 photons): background ~0.05/pixel, ``spots`` Gaussian spots."""
    rng = np.random.default_rng(seed)
    out = rng.poisson(0.05, size=(events, *shape)).astype(np.float32)
    r, c = np.mgrid[-3:4, -3:4]
    for frame in out:
        rows = rng.integers(4, shape[0] - 4, spots)
        cols = rng.integers(4, shape[1] - 4, spots)
        for y, x, photons in zip(rows, cols, rng.uniform(30, 3000, spots)):
            blob = photons * np.exp(-(r**2 + c**2) / (2 * 1.0**2)) / (2 * np.pi)
            frame[y - 3 : y + 4, x - 3 : x + 4] += rng.poisson(blob)
    return out


def write_tiled_run(
    folder: Path,
    source_geom: str | Path,
    modules: int = 8,
    events: int = 2,
    spots: int = 300,
    seed: int = 7,
    photon_energy_ev: float = 12000.0,
) -> Path:
    """Write ``folder/detector.geom`` and ``folder/frames.h5``; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    geom = read_geom(source_geom)
    tiled = tiled_geom(geom, nearest_panels(geom, modules), photon_energy_ev)
    write_geom(tiled, folder / "detector.geom")
    last = max(int(p["max_ss"]) for p in tiled.panels.values()) + 1
    width = max(int(float(p["max_fs"])) for p in tiled.panels.values()) + 1
    data = frames_in_photons((last, width), events, spots, seed)
    with h5py.File(folder / "frames.h5", "w") as f:
        f.create_dataset(DATA_PATH, data=data, chunks=(1, *data.shape[1:]))
    return folder
