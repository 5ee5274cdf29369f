"""Our per-image chain vs DIALS ``dials.stills_process`` on the same simulated stills.

Both get the same events of one simulated run: ours the raw frames (calibration included in its
time), DIALS the calibrated photon counts written as miniCBF (bad and gap pixels -1), with the
same known cell and space group, one process each. Prints images/s per core and the indexing
rate of true hits side by side, and the ratio. Needs the Debian package ``dials`` (installed
with ``apt-get install dials`` if missing); not part of ``make test``.

    .venv/bin/python bench/dials_bench.py [--images 100] [--seed 4] [--keep DIR]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _var in (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
):  # one core, as a rank runs (see kernels/__main__.py)
    os.environ.setdefault(_var, "1")

import h5py  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facility.beamline.simulate import LYSOZYME_CELL, LYSOZYME_SPACE_GROUP, simulate_experiment  # noqa: E402
from kernels.io.runformat import open_run  # noqa: E402
from kernels.stages.calibration import calibrate, load_calibration  # noqa: E402
from kernels.stages.pipeline import Processor  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3"
HERE = Path(__file__).resolve().parent


def ensure_dials() -> None:
    """Install the Debian package ``dials`` when dials.stills_process is missing."""
    if shutil.which("dials.stills_process"):
        return
    print("installing Debian package dials ...", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "dials"],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def run_ours(exp: Path):
    """Whole chain over every event in this process: (seconds, indexed flags, frames for DIALS)."""
    with open_run(exp / "runs" / "r0001") as run:
        calib = load_calibration(exp / "calib" / "calibration.h5", run.geometry.shape)
        processor = Processor(calib, run.geometry)
        raws = [(run.read_frame(c, e), run.wavelength(c, e)) for c, e in run.events]
        started = time.perf_counter()
        results = [processor.process(raw, wavelength=wl) for raw, wl in raws]
        seconds = time.perf_counter() - started
        indexed = np.array([r.status in ("indexed", "refined", "integrated") for r in results])
        frames = np.array(
            [
                np.where(
                    calib.mask,
                    np.rint(np.maximum(calibrate(raw, processor.calibration_plan), 0)),
                    -1,
                )
                for raw, _ in raws
            ]
        ).astype(np.int32)
        g = run.geometry
        geometry = np.array([g.pixel_size_mm, g.distance_mm, g.beam_x, g.beam_y])
        wavelengths = np.array([wl for _, wl in raws])
    return seconds, indexed, frames, wavelengths, geometry


def run_dials(work: Path, frames, wavelengths, geometry):
    """dials.stills_process (1 process) on the frames: (seconds, indexed flags per image)."""
    np.savez(work / "frames.npz", frames=frames, wavelength=wavelengths, geometry=geometry)
    subprocess.run(
        [
            SYSTEM_PYTHON,
            str(HERE / "dials_write_cbf.py"),
            str(work / "frames.npz"),
            str(work / "cbf"),
        ],
        check=True,
    )
    ext = work / "pythonpath"
    ext.mkdir(exist_ok=True)
    (ext / "xfel_mono_sim_ext.py").write_text("")  # stills indexing silently fails without it
    cell = ",".join(str(v) for v in LYSOZYME_CELL)
    phil = work / "params.phil"
    phil.write_text(
        f"indexing.known_symmetry {{\n space_group = {LYSOZYME_SPACE_GROUP.replace(' ', '')}\n unit_cell = {cell}\n}}\n"
        "mp.nproc = 1\noutput.composite_output = False\noutput.output_dir = out\n"
    )
    (work / "out").mkdir(exist_ok=True)
    images = sorted(glob.glob(str(work / "cbf" / "*.cbf")))
    env = dict(os.environ, PYTHONPATH=str(ext))
    env.pop("VIRTUAL_ENV", None)
    started = time.perf_counter()
    subprocess.run(
        ["dials.stills_process", str(phil), *images],
        cwd=work,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - started
    indexed = np.array(
        [bool(glob.glob(str(work / "out" / f"idx-{Path(p).stem}_indexed.refl"))) for p in images]
    )
    return seconds, indexed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--keep", help="keep the work directory here")
    args = parser.parse_args(argv)
    ensure_dials()
    work = Path(args.keep or tempfile.mkdtemp(prefix="dials_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    exp = work / "exp"
    simulate_experiment(
        exp, runs=1, images=args.images, seed=args.seed, workers=1, log=lambda *_: None
    )
    with h5py.File(exp / "truth" / "r0001.h5", "r") as f:
        hit = f["hit"][()]
    ours_s, ours_idx, frames, wavelengths, geometry = run_ours(exp)
    dials_s, dials_idx = run_dials(work, frames, wavelengths, geometry)
    n = len(hit)
    ours_rate, dials_rate = n / ours_s, n / dials_s
    print(f"{n} images ({hit.sum()} true hits), 1 core each")
    print(f"{'':24s}{'sfxflow':>12s}{'DIALS':>12s}{'ratio':>10s}")
    print(
        f"{'images/s per core':24s}{ours_rate:12.2f}{dials_rate:12.3f}{ours_rate / dials_rate:10.1f}"
    )
    print(
        f"{'true hits indexed':24s}{ours_idx[hit].mean():12.3f}{dials_idx[hit].mean():12.3f}"
        f"{ours_idx[hit].mean() / max(dials_idx[hit].mean(), 1e-9):10.2f}"
    )
    print(f"{'misses indexed':24s}{ours_idx[~hit].sum():12d}{dials_idx[~hit].sum():12d}")
    if not args.keep:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
