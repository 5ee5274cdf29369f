"""Simulated SFX runs with ground truth, written the way the DAQ writes them.

An experiment folder gets

* ``calib/calibration.h5`` — pedestal, gain and bad-pixel mask of the detector;
* ``runs/r0001/`` — chunk + index files and a snapshot of the calibration, then ``CONCLUDED.json``
  once every file is closed;
* ``truth/truth.mtz`` — true merged intensities of the crystal (unique reflections), and
  ``truth/truth_light.mtz`` those of its light state in a pump-probe beamtime
  (``light_moved_atoms`` > 0: ``laser_fraction`` of the shots are of the light state, and the
  chunk files carry the DAQ's per-event tags ``laser_on`` and ``delay_ns``);
* ``truth/r0001.h5`` — per event: hit flag, orientation U, A = U B, wavelength, crystal scale,
  the crystal's spot width, domain size and mosaicity, whether ice rings were drawn, whether the
  pump laser was on; the visible reflections (``spots``: event, hkl, detector position, expected
  photons, partiality) and every excited reflection with partiality >= 0.1 (``excited``: event,
  hkl, col, row, partiality).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import h5py
import numpy as np

from facility.beamline.crystal_model import (
    Crystal,
    LightState,
    laser_shots,
    make_crystal,
    write_truth_mtz,
)
from facility.beamline.detector_model import DetectorModel
from facility.beamline.variants import (
    CrystalDraw,
    ExtraBackground,
    draw_crystal,
    spot_profiles,
    spot_window,
)
from kernels.crystal.geometry import (
    DetectorGeometry,
    default_geometry,
    excitation_error,
    random_rotation,
    scattering_vectors,
)
from kernels.crystal.panel_image import image_projection, image_s_magnitude
from kernels.io.marker import chunk_name, run_name, write_marker
from kernels.io.runformat import HC_EV_ANGSTROM, write_chunk
from kernels.stages.calibration import save_calibration

LYSOZYME_CELL = (79.1, 79.1, 38.4, 90.0, 90.0, 90.0)
LYSOZYME_SPACE_GROUP = "P 43 21 2"
EXCITED_PARTIALITY = 0.1  # excited reflections recorded in the truth


@dataclass(frozen=True)
class SimulationParams:
    """Physics and beamline settings of a simulated beamtime (defaults: lysozyme-like, 1.3 A)."""

    cell: tuple[float, ...] = LYSOZYME_CELL
    space_group: str = LYSOZYME_SPACE_GROUP
    wavelength: float = 1.3
    wavelength_jitter: float = 1e-3  # shot-to-shot mean wavelength, fractional rms (recorded)
    bandwidth: float = 2.5e-3  # spectral width within a shot, fractional rms
    mosaicity_deg: float = 0.05
    mosaicity_max_deg: float = 0.0  # > mosaicity_deg: each crystal's drawn log-uniform up to it
    domain_size_a: float = 5000.0
    domain_size_min_a: float = 0.0  # > 0: each crystal's drawn log-uniform from it to domain_size_a
    d_min: float = 1.9
    hit_rate: float = 0.3
    weak_fraction: float = 0.5  # of the misses: a crystal too weak to see, else a blank shot
    photons_per_reflection: float = 60.0  # mean expected photons of a fully recorded reflection
    crystal_scale_spread: float = 0.4  # lognormal sigma of the crystal size effect
    spot_sigma_px: float = 0.9
    spot_sigma_max_px: float = 0.0  # > spot_sigma_px: each crystal's drawn log-uniform up to it
    spot_elongation: float = 1.0  # radial / tangential spot width
    diffuse_photons: float = 0.05
    water_ring_photons: float = 0.3
    water_ring_d: float = 3.7
    ice_fraction: float = 0.0  # of the shots, with ice rings
    ice_ring_photons: float = 2.0  # peak photons per pixel of the strongest ice ring
    miss_diffuse_photons: float = 0.0  # peak photons per pixel of a miss's weak diffuse halo
    rep_rate_hz: float = 120.0
    chunk_size: int = 250
    n_atoms: int = 1000
    light_moved_atoms: int = 0  # > 0: a pump-probe beamtime with this many atoms moved when lit
    light_fraction: float = 0.5  # of the unit cells, light-activated
    laser_fraction: float = 0.5  # of the shots, laser on (pump-probe)
    delays_ns: tuple[float, ...] = (100.0, 1000.0)  # pump-probe delays, one drawn per laser shot


def background_map(geometry, params: SimulationParams) -> np.ndarray:
    """Expected diffuse + water-ring photons per pixel for the nominal wavelength (float32)."""
    s = image_s_magnitude(geometry, params.wavelength)
    ring = np.exp(-0.5 * ((s - 1.0 / params.water_ring_d) / 0.025) ** 2)
    return (params.diffuse_photons + params.water_ring_photons * ring).astype(np.float32)


BACKGROUND_LEVELS = np.linspace(0.7, 1.3, 13)  # per-shot background scale, quantised
POISSON_KMAX = 6


def poisson_cdf_table(mean: np.ndarray, levels) -> np.ndarray:
    """Cumulative Poisson probabilities P(X <= k), k < POISSON_KMAX, of `mean * level` per pixel.

    Shape (levels, POISSON_KMAX, *mean.shape), float32. With these tables a background frame is
    drawn with one uniform number per pixel (see :func:`poisson_from_cdf`), several times faster
    than ``Generator.poisson``; backgrounds here are < 1 photon/pixel, so counts above
    POISSON_KMAX have probability < 1e-5 per pixel and are capped there.
    """
    table = np.empty((len(levels), POISSON_KMAX, *mean.shape), dtype=np.float32)
    for i, level in enumerate(levels):
        lam = mean.astype(np.float64) * level
        term = np.exp(-lam)
        cdf = term.copy()
        for k in range(POISSON_KMAX):
            table[i, k] = cdf
            term *= lam / (k + 1)
            cdf += term
    return table


def poisson_from_cdf(cdf: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson counts (float32) by inverting per-pixel CDFs ``cdf[k] = P(X <= k)``."""
    u = rng.random(cdf.shape[1:], dtype=np.float32)
    counts = np.zeros(cdf.shape[1:], dtype=np.float32)
    for level in cdf:
        counts += u > level
    return counts


def partiality(
    s: np.ndarray, epsilon: np.ndarray, params: SimulationParams, crystal: CrystalDraw
) -> np.ndarray:
    """Fraction of each reflection recorded on a still: Gaussian in its excitation error.

    The width combines the crystal's finite domain size, its mosaic spread (grows with |s|) and
    the spectral bandwidth (grows with |s|^2).
    """
    s_mag = np.linalg.norm(s, axis=1)
    width2 = (
        (1.0 / crystal.domain_size_a) ** 2
        + (np.radians(crystal.mosaicity_deg) * s_mag) ** 2
        + (params.bandwidth * params.wavelength * s_mag**2 / 2.0) ** 2
    )
    return np.exp(-0.5 * epsilon**2 / width2)


class Renderer:
    """Draws stills of one crystal on one detector; one instance per worker process."""

    def __init__(self, crystal: Crystal, detector: DetectorModel, params: SimulationParams):
        if params.spot_elongation != 1.0 and not isinstance(detector.geometry, DetectorGeometry):
            raise ValueError("radially elongated spots need a flat detector (a beam centre)")
        self.crystal = crystal
        self.detector = detector
        self.params = params
        self.background = background_map(detector.geometry, params)
        self._background_cdf: dict[int, np.ndarray] = {}  # by level, built when first drawn
        self.extra = ExtraBackground.build(detector.geometry, params)
        self.window = spot_window(params)
        d = np.arange(-self.window, self.window + 1)
        self.window_dr, self.window_dc = (a.ravel() for a in np.meshgrid(d, d, indexing="ij"))

    def background_cdf(self, level: int) -> np.ndarray:
        """The Poisson CDF table of BACKGROUND_LEVELS[level], built on first use (105 MB and
        ~0.6 s each on 4 Mpix: a few shots need only the levels they draw)."""
        if level not in self._background_cdf:
            levels = BACKGROUND_LEVELS[level : level + 1]
            self._background_cdf[level] = poisson_cdf_table(self.background, levels)[0]
        return self._background_cdf[level]

    def reflections(self, A: np.ndarray, wavelength: float, crystal: CrystalDraw):
        """Reflections excited on this shot: indices into crystal.hkl, partiality, col, row."""
        s = scattering_vectors(A, self.crystal.hkl)
        p = partiality(s, excitation_error(s, wavelength), self.params, crystal)
        near = np.flatnonzero(p > 1e-3)
        col, row = image_projection(s[near], wavelength, self.detector.geometry)
        rows, cols = self.detector.geometry.shape
        w = self.window
        on = (col >= w) & (col < cols - w - 1) & (row >= w) & (row < rows - w - 1)
        return near[on], p[near][on], col[on], row[on]

    def add_spots(
        self, image: np.ndarray, col, row, photons, sigma: float, rng: np.random.Generator
    ) -> None:
        """Add the photons of Gaussian spots (width `sigma` px, elongated radially by the run's
        spot_elongation) of `photons` expected photons centred at (col, row)."""
        rr = np.rint(row).astype(np.int64)[:, None] + self.window_dr
        cc = np.rint(col).astype(np.int64)[:, None] + self.window_dc
        g = self.detector.geometry
        beam = (g.beam_x, g.beam_y) if isinstance(g, DetectorGeometry) else None
        profile = spot_profiles(rr, cc, col, row, sigma, self.params.spot_elongation, beam)
        counts = rng.poisson(profile * photons[:, None])
        np.add.at(image.reshape(-1), (rr * image.shape[1] + cc).ravel(), counts.ravel())

    def shot(self, rng: np.random.Generator, lit: bool = False):
        """One still (of the light state when `lit`): raw frame, its wavelength and its truth."""
        image, wavelength, truth = self.photon_shot(rng, lit)
        return self.detector.to_raw(image, rng), wavelength, truth

    def photon_shot(self, rng: np.random.Generator, lit: bool = False):
        """One still in photons (what a facility's calibrated files hold), its wavelength and
        its ground truth; of the crystal's light state when `lit` (a pump-probe laser shot)."""
        p = self.params
        crystal = self.crystal.light() if lit else self.crystal
        wavelength = p.wavelength * (1.0 + p.wavelength_jitter * rng.standard_normal())
        level = rng.integers(len(BACKGROUND_LEVELS))  # jet thickness varies shot to shot
        image = poisson_from_cdf(self.background_cdf(int(level)), rng)
        U = random_rotation(rng)
        A = U @ self.crystal.B
        roll = rng.random()
        hit = roll < p.hit_rate
        weak = not hit and roll < p.hit_rate + (1.0 - p.hit_rate) * p.weak_fraction
        scale = rng.lognormal(0.0, p.crystal_scale_spread) if hit else (2e-3 if weak else 0.0)
        drawn = draw_crystal(p, rng)
        ice = p.ice_fraction > 0 and bool(rng.random() < p.ice_fraction)
        self.extra.add(image, ice, not hit, rng)
        spots = None
        if scale > 0:
            idx, part, col, row = self.reflections(A, wavelength, drawn)
            photons = scale * p.photons_per_reflection * crystal.intensity[idx] * part
            self.add_spots(image, col, row, photons, drawn.spot_sigma_px, rng)
            spots = (idx, part, col, row, photons)
        truth = {"hit": hit, "U": U, "A": A, "scale": scale, "spots": spots, "ice": ice}
        truth["laser_on"] = lit
        return image, wavelength, truth | asdict(drawn)


_renderer: Renderer | None = None  # set in each worker by _init_worker (fork inherits it too)


def _init_worker(renderer: Renderer) -> None:
    global _renderer
    _renderer = renderer


def simulate_chunk(job):
    """Render and write one chunk file; return its ground truth (runs in a worker process)."""
    run_dir, name, chunk, first_event, n_events, t0, seed = job
    rng = np.random.default_rng(seed)
    params = _renderer.params
    geometry = _renderer.detector.geometry
    frames = np.empty((n_events, *geometry.shape), dtype=np.uint16)
    truth = []
    wavelengths = np.empty(n_events)
    lit, tags = np.zeros(n_events, dtype=bool), None
    if params.light_moved_atoms:  # its own stream: the shots' stay those of a dark beamtime
        laser_rng = np.random.default_rng([*seed, 27183])
        lit, tags = laser_shots(n_events, params.laser_fraction, params.delays_ns, laser_rng)
    for i in range(n_events):
        frames[i], wavelengths[i], t = _renderer.shot(rng, bool(lit[i]))
        truth.append(t)
    timestamps = t0 + (first_event + np.arange(n_events)) / _renderer.params.rep_rate_hz
    write_chunk(
        Path(run_dir) / chunk_name(name, chunk),
        frames,
        timestamps,
        HC_EV_ANGSTROM / wavelengths,
        geometry,
        tags,
    )
    return chunk, first_event, wavelengths, truth


PER_EVENT = ("hit", "U", "A", "scale", "ice", "laser_on", *(f.name for f in fields(CrystalDraw)))
REFLECTION_KEYS = ("event", "h", "k", "l", "col", "row", "photons", "partiality")


def _reflection_rows(crystal: Crystal, event: int, spots, select: np.ndarray) -> dict:
    """The truth columns of the selected reflections of one event."""
    idx, part, col, row, photons = (a[select] for a in spots)
    hkl = crystal.hkl[idx]
    values = (np.full(len(idx), event), *hkl.T, col, row, photons, part)
    return dict(zip(REFLECTION_KEYS, values))


def write_run_truth(path, crystal: Crystal, results) -> None:
    """The run's ground truth (``truth/<run>.h5``) from its chunks' results."""
    per_event: dict[str, list] = {key: [] for key in PER_EVENT}
    groups: dict[str, dict[str, list]] = {
        g: {k: [] for k in REFLECTION_KEYS} for g in ("spots", "excited")
    }
    wls = []
    for _, first_event, wavelengths, truth in sorted(results, key=lambda r: r[0]):
        for i, t in enumerate(truth):
            for key in PER_EVENT:
                per_event[key].append(t[key])
            if t["spots"] is None:
                continue
            photons, part = t["spots"][4], t["spots"][1]
            for g, select in (("spots", photons >= 5.0), ("excited", part >= EXCITED_PARTIALITY)):
                for key, values in _reflection_rows(
                    crystal, first_event + i, t["spots"], select
                ).items():
                    groups[g][key].append(values)
        wls.append(wavelengths)
    with h5py.File(path, "w") as f:
        for key, values in per_event.items():
            f[key] = np.array(values)
        f["wavelength"] = np.concatenate(wls)
        for g, columns in groups.items():
            group = f.create_group(g)
            for key, parts in columns.items():
                group[key] = np.concatenate(parts) if parts else np.zeros(0)


def prepare_experiment(out: Path, seed: int, params: SimulationParams) -> tuple[Crystal, Renderer]:
    """Crystal, detector, calibration and truth MTZ of the experiment ``out`` (from ``seed``)."""
    for sub in ("calib", "runs", "truth"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    light = LightState(params.light_moved_atoms, params.light_fraction)
    crystal = make_crystal(
        params.cell, params.space_group, params.d_min, seed, params.n_atoms, light=light
    )
    detector = DetectorModel.generate(default_geometry(), np.random.default_rng([seed, 1]))
    save_calibration(out / "calib" / "calibration.h5", detector.calibration())
    write_truth_mtz(out / "truth" / "truth.mtz", crystal)
    if crystal.light_intensity is not None:
        write_truth_mtz(out / "truth" / "truth_light.mtz", crystal.light())
    (out / "truth" / "simulation.json").write_text(json.dumps(asdict(params), indent=1))
    return crystal, Renderer(crystal, detector, params)


def chunk_jobs(run_dir, number: int, images: int, seed: int, params: SimulationParams, t0: float):
    """The work items of one run, one per chunk, for :func:`simulate_chunk`."""
    return [
        (
            str(run_dir),
            run_name(number),
            c,
            first,
            min(params.chunk_size, images - first),
            t0,
            [seed, number, c],
        )
        for c, first in enumerate(range(0, images, params.chunk_size))
    ]


def chunk_pool(renderer: Renderer, workers: int | None) -> ProcessPoolExecutor:
    """Worker processes that render chunks with ``renderer`` (forked: it is not pickled)."""
    return ProcessPoolExecutor(
        workers or os.cpu_count() or 1,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_init_worker,
        initargs=(renderer,),
    )


def simulate_experiment(
    out,
    runs: int,
    images: int,
    seed: int = 0,
    params: SimulationParams | None = None,
    first_run: int = 1,
    workers: int | None = None,
    log=print,
) -> list[Path]:
    """Write `runs` runs of `images` events each into the experiment folder `out`.

    The crystal and the detector depend only on `seed` (one experiment), the shots on the seed
    and the run number. Each run is marked concluded only after all its files are closed.

    Returns
    -------
    list of run directories, in order.
    """
    params = params or SimulationParams()
    out = Path(out)
    crystal, renderer = prepare_experiment(out, seed, params)
    run_dirs = []
    with chunk_pool(renderer, workers) as pool:
        for number in range(first_run, first_run + runs):
            started = time.perf_counter()
            name = run_name(number)
            run_dir = out / "runs" / name
            run_dir.mkdir(parents=True, exist_ok=True)
            jobs = chunk_jobs(run_dir, number, images, seed, params, time.time())
            results = list(pool.map(simulate_chunk, jobs))
            # the constants valid for this run travel with it (as a calibration-store snapshot)
            shutil.copyfile(out / "calib" / "calibration.h5", run_dir / "calibration.h5")
            write_run_truth(out / "truth" / f"{name}.h5", crystal, results)
            write_marker(run_dir, number)
            n_hits = sum(t["hit"] for r in results for t in r[3])
            log(
                f"{name}: {images} images ({n_hits} hits) in {time.perf_counter() - started:.1f} s -> {run_dir}"
            )
            run_dirs.append(run_dir)
    return run_dirs
