"""Real CSPAD thermolysin frames (CBF, per-ASIC header geometry) through our multi-panel chain,
beside DIALS's solution of the same frames.

    .venv/bin/python bench/detectors_bench.py

Prints, for frame 401: our spots, indexed, refined, integrated; our refined rms and DIALS's
solution's rms on the same spots (both predicted from the lattice point rotated onto the Ewald
sphere, in the spot's panel pixels); DIALS's own rms of its integrated reflections (observed
vs calculated, from dials_reference.json: the realdata holds no .expt/.refl); the orientation
and cell vs DIALS; and what happened to 601 (DIALS found no lattice).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kernels.crystal.symmetry import CrystalSymmetry  # noqa: E402
from kernels.io.readers.cbf import CbfReader  # noqa: E402
from tests.kernels.realdata import REALDATA  # noqa: E402
from tests.kernels.stages.cspad import process_cspad, rms_on_spots  # noqa: E402

FRAMES = ("idx-20130301060858401.cbf", "idx-20130301060858601.cbf")


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


if __name__ == "__main__":
    main()
