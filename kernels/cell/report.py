"""What ``python -m kernels cell`` writes: ``cell.json`` (the dominant cell, its lattice, space
groups, spread and the minority cells) and ``cell_histograms.png`` (a, b, c, alpha, beta, gamma
of the dominant cluster's images in the conventional setting)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from kernels.cell.absences import AbsenceScore  # noqa: E402
from kernels.cell.determination import CellCluster, CellResult  # noqa: E402
from kernels.io.atomic import atomic_path, write_json  # noqa: E402

CELL_FILE = "cell.json"
HISTOGRAM_FILE = "cell_histograms.png"
LABELS = ("a (Å)", "b (Å)", "c (Å)", "α (°)", "β (°)", "γ (°)")


def describe(form: CellCluster) -> dict:
    """One crystal form as JSON."""
    sol = form.solution
    return {
        "bravais": sol.bravais.symbol,
        "crystal_family": sol.bravais.family,
        "cell": [round(v, 3) for v in sol.cell],
        "spread": [round(v, 3) for v in form.spread],
        "images": len(form.members),
        "distortion": {"length": sol.distortion[0], "angle_deg": sol.distortion[1]},
        "transform_from_reduced": sol.transform.tolist(),
        "space_groups": form.space_groups(),
    }


def summary_line(form: CellCluster) -> str:
    """The cell in one line, e.g. 'tP 79.05 79.05 38.17 90.00 90.00 90.00 (130 images)'."""
    cell = " ".join(f"{v:.2f}" for v in form.solution.cell)
    return f"{form.solution.bravais.symbol} {cell} ({len(form.members)} images)"


def write_report(result: CellResult, out_dir, absences: list[AbsenceScore] | None = None) -> dict:
    """Write cell.json and the histograms; return the JSON written. With `absences`, the main
    cell's space groups ranked by a merge's systematic absences, best first."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    main = describe(result.main)
    if absences is not None:
        main["space_groups_by_absences"] = [s.as_json() for s in absences]
    report = {
        "cells_read": result.n_cells,
        "main": main,
        "others": [describe(f) for f in result.others],
        "unassigned": result.unassigned,
    }
    write_histograms(result.main, out / HISTOGRAM_FILE)
    write_json(out / CELL_FILE, report)
    return report


def write_histograms(form: CellCluster, path: Path) -> None:
    """Six histograms of the members' conventional cell parameters, the chosen value marked."""
    fig, axes = plt.subplots(2, 3, figsize=(11, 6))
    for k, ax in enumerate(axes.ravel()):
        ax.hist(form.cells[:, k], bins=40, color="#4477aa")
        ax.axvline(form.solution.cell[k], color="#cc3311")
        ax.set_xlabel(LABELS[k])
    fig.suptitle(f"{summary_line(form)}: cells of the dominant cluster")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
