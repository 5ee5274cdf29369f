"""Real CSPAD thermolysin frames (CBF, per-ASIC header geometry) through our multi-panel chain,
beside DIALS's solution of the same frames.

    .venv/bin/python bench/detectors_bench.py

Prints, for frame 401: our spots, indexed, refined, integrated; our refined rms and DIALS's
solution's rms on the same spots (both predicted from the lattice point rotated onto the Ewald
sphere, in the spot's panel pixels); DIALS's own rms of its integrated reflections (observed
vs calculated, from dials_reference.json: the realdata holds no .expt/.refl); the orientation
and cell vs DIALS; and what happened to 601 (DIALS found no lattice).

Then simulated lysozyme stills (all hits) on today's flat detector (chunk format, raw ADU) beside
the same crystal on the CSPAD, ePix10k 2M and Jungfrau 4M geometries from shared (SwissFEL's
Jungfrau 4M from the photolyase stream; each panel tilted 3 mrad, shifted 0.2 mm, at 100 mm,
the Jungfrau also at 140 mm, where it sees the flat detector's angles;
calibrated photons as CXI + .geom): indexed fraction, orientation error vs truth, merged CC to
the true intensities (and both as a ratio to the flat run's), and chain time per image and per
Mpix. ``--skip-cspad`` runs only the simulated part.

    .venv/bin/python bench/detectors_bench.py [--skip-cspad]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facility.beamline.panel_run import simulate_panel_run, tilted  # noqa: E402
from facility.beamline.simulate import SimulationParams, simulate_experiment  # noqa: E402
from kernels.crystal.symmetry import CrystalSymmetry  # noqa: E402
from kernels.foreign import process_foreign_run  # noqa: E402
from kernels.io.geom import read_geom  # noqa: E402
from kernels.io.geom_detector import to_detector  # noqa: E402
from kernels.io.readers.base import stacked  # noqa: E402
from kernels.io.readers.cbf import CbfReader  # noqa: E402
from kernels.io.reflections import read_integrated  # noqa: E402
from kernels.merging.cli import merge_results  # noqa: E402
from kernels.process import process_run  # noqa: E402
from tests.kernels.realdata import JUNGFRAU_4M_STREAM, REALDATA, stream_geometry  # noqa: E402
from tests.kernels.stages.cspad import process_cspad, rms_on_spots  # noqa: E402

FRAMES = ("idx-20130301060858401.cbf", "idx-20130301060858601.cbf")
SIMULATED_IMAGES = 40
GEOMETRIES = {  # path in shared/realdata, camera length (m) when the file leaves it to its
    # data, distance (mm) the tilted detector is put at
    "CSPAD": (("geometry_files", "crystfel_examples", "cspad-cxiformat.geom"), 0.1, 100.0),
    "ePix10k 2M": (("geometry_files", "om_lcls", "lcls_mfx_epix10k2M.geom"), 0.1, 100.0),
    "Jungfrau 4M": (JUNGFRAU_4M_STREAM, None, 100.0),  # embedded in the stream
    # the flat detector's angular coverage (its inscribed circle at 29.6 deg 2-theta)
    "Jungfrau 4M 140 mm": (JUNGFRAU_4M_STREAM, None, 140.0),
}


def geometry_file(parts: tuple[str, ...], folder: Path) -> Path:
    """A shared geometry file, or the one embedded in a shared CrystFEL stream."""
    path = REALDATA.joinpath(*parts)
    return stream_geometry(path, folder) if path.suffix == ".stream" else path


def dials_integrated_rms(table: np.ndarray, min_i_over_sigma: float) -> tuple[int, float]:
    """DIALS's observed vs calculated positions of its integrated reflections (px)."""
    strong = table[:, 12] / table[:, 13] > min_i_over_sigma
    d = np.hypot(table[strong, 4] - table[strong, 6], table[strong, 5] - table[strong, 7])
    return int(strong.sum()), float(np.sqrt(np.mean(d**2)))


def main() -> None:
    folder = REALDATA / "cspad_thermolysin"
    if not folder.exists():
        sys.exit(f"{folder} is absent (see shared/realdata/README.md)")
    dials = json.loads((folder / "dials_reference.json").read_text())["results"][0]
    reader = CbfReader([str(folder / f) for f in FRAMES])
    started = time.perf_counter()
    (r401, r601), processor = process_cspad(reader)
    seconds = time.perf_counter() - started
    print(f"chain on 2 CSPAD frames (64 ASICs, plans included): {seconds:.1f} s")
    print(
        f"401: {r401.n_spots} spots, {r401.n_indexed} indexed, {r401.n_refined} refined, "
        f"{r401.n_integrated} integrated ({r401.status})"
    )
    ours, theirs_same, theirs_own = rms_on_spots(processor, r401, dials)
    print(
        f"401 rms on our spots: ours {ours:.3f} px; DIALS's solution {theirs_same:.3f} px on the "
        f"same spots, {theirs_own:.3f} px on those within 2 px of its own predictions"
    )
    print(f"401 our refinement's weighted-fit rms: {r401.rmsd_px:.3f} px")
    table = np.array(dials["reflections"])
    for cut in (0.0, 10.0):
        n, rms = dials_integrated_rms(table, cut)
        print(f"DIALS's own obs-vs-calc rms, {n} integrated with I/sigma > {cut:g}: {rms:.3f} px")
    B = CrystalSymmetry.create(tuple(dials["unit_cell"]), "P 61 2 2").B
    u, _, vt = np.linalg.svd(np.array(dials["A_sfxflow"]) @ np.linalg.inv(B))
    angle = processor.symmetry.orientation_difference_deg(r401.U, u @ vt)
    print(f"401 orientation vs DIALS: {angle:.3f} deg")
    cell = r401.cell or ()
    print(
        f"401 cell: ours {cell[0]:.2f} / {cell[2]:.2f} A, "
        f"DIALS {dials['unit_cell'][0]:.2f} / {dials['unit_cell'][2]:.2f} A"
    )
    print(f"601: {r601.status}, {r601.n_spots} spots: {r601.reason}")


def run_figures(out: Path, truth_mtz: Path, seconds: float, pixels: int) -> dict:
    """Indexed fraction, median orientation error vs truth, CC to truth and time per image."""
    _, images, _ = read_integrated(out)
    stats = merge_results([out], out / "merged.mtz", truth_mtz)
    return {
        "integrated": len(images["U"]),
        "cc_truth": stats["overall"].get("cc_truth", float("nan")),
        "s_per_image": seconds / SIMULATED_IMAGES,
        "us_per_pixel_image": seconds / SIMULATED_IMAGES / pixels * 1e6,
    }


def orientation_errors(out: Path, truth_U: np.ndarray) -> float:
    _, images, _ = read_integrated(out)
    symmetry = CrystalSymmetry.create((79.1, 79.1, 38.4, 90, 90, 90), "P 43 21 2")
    errors = [
        symmetry.orientation_difference_deg(U, truth_U[e])
        for e, U in zip(images["event"], images["U"])
    ]
    return float(np.median(errors)) if errors else float("nan")


def simulated(root: Path) -> None:
    """The flat chain on a flat run beside the multi-panel chain on tilted real geometries."""
    params = SimulationParams(hit_rate=1.0)
    (run,) = simulate_experiment(
        root / "flat", 1, SIMULATED_IMAGES, seed=8, params=params, log=lambda _: None
    )
    started = time.perf_counter()
    process_run(run, root / "flat-out")
    seconds = time.perf_counter() - started

    with h5py.File(root / "flat" / "truth" / "r0001.h5") as f:
        truth_U = f["U"][()]
    rows = {
        "flat 1 Mpix": (
            run_figures(
                root / "flat-out", root / "flat" / "truth" / "truth.mtz", seconds, 1024 * 1024
            ),
            orientation_errors(root / "flat-out", truth_U),
        )
    }
    for name, (parts, clen_m, distance_mm) in GEOMETRIES.items():
        folder = root / name.replace(" ", "_")
        folder.mkdir()
        geom_path = geometry_file(parts, folder)
        detector = tilted(
            stacked(to_detector(read_geom(geom_path), clen_m), name), distance_mm=distance_mm
        )
        data = simulate_panel_run(folder, detector, SIMULATED_IMAGES, seed=8, params=params)
        started = time.perf_counter()
        process_foreign_run([data], folder / "out", folder / "detector.geom")
        seconds = time.perf_counter() - started
        with h5py.File(folder / "truth.h5") as f:
            truth_U = f["U"][()]
        pixels = len(detector.panels) * int(np.prod(detector.panels[0].shape))
        rows[f"{name} tilted ({pixels / 1e6:.1f} Mpix)"] = (
            run_figures(folder / "out", folder / "truth.mtz", seconds, pixels),
            orientation_errors(folder / "out", truth_U),
        )
    print(f"\nsimulated lysozyme, {SIMULATED_IMAGES} hits each (same crystal, seed 8):")
    flat = rows["flat 1 Mpix"][0]
    for name, (fig, error) in rows.items():
        print(
            f"  {name:28s} integrated {fig['integrated']:3d}/{SIMULATED_IMAGES} "
            f"(x{fig['integrated'] / max(flat['integrated'], 1):.3f} of flat), "
            f"orientation vs truth {error:.4f} deg, CC to truth {fig['cc_truth']:.4f} "
            f"(x{fig['cc_truth'] / flat['cc_truth']:.4f}), "
            f"{fig['s_per_image']:.2f} s/image ({fig['us_per_pixel_image']:.3f} us/pixel)"
        )
    print(f"  load average {os.getloadavg()}")


if __name__ == "__main__":
    if "--skip-cspad" not in sys.argv[1:]:
        main()

    with tempfile.TemporaryDirectory() as tmp:
        simulated(Path(tmp))
