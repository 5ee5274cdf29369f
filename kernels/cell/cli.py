"""``python -m kernels cell-index`` (a run's hits indexed cell-free) and ``python -m kernels
cell`` (the unit cell of many runs' reduced cells)."""

from __future__ import annotations

import argparse
import time

from kernels.cell.absences import DEFAULT_CUT, AbsenceError, AbsenceScore, absences_of_mtz
from kernels.cell.determination import CellDeterminationError, CellResult
from kernels.cell.fft_indexing import CellFreeParams
from kernels.cell.from_results import cell_of_results
from kernels.cell.report import CELL_FILE, summary_line, write_report
from kernels.cell.run_index import CELLFREE_FILE, index_run

ERRORS = (CellDeterminationError, AbsenceError)


def add_commands(commands) -> None:
    """Register the two subcommands on the kernels' argument parser."""
    idx = commands.add_parser("cell-index", help="index a run's hits without a cell")
    idx.add_argument("--run", required=True, help="run directory (<exp>/runs/rNNNN)")
    idx.add_argument("--out", required=True, help=f"output directory ({CELLFREE_FILE})")
    idx.add_argument("--calib", help="calibration file (default <exp>/calib/calibration.h5)")
    idx.add_argument("--max-cell", type=float, default=250.0, help="longest cell axis, A")
    idx.add_argument("--lattices", type=int, default=1, help="lattices sought per image")
    cell = commands.add_parser("cell", help="determine the unit cell from cell-free results")
    cell.add_argument("--results", required=True, nargs="+", help=f"dirs with {CELLFREE_FILE}")
    cell.add_argument("--out", required=True, help=f"output directory ({CELL_FILE}, PNG)")
    cell.add_argument(
        "--absences",
        metavar="MERGED_MTZ",
        help="rank the lattice's space groups by this merge's systematic absences (merged in "
        "the determined cell, in a group without screw axes, e.g. P 4 2 2)",
    )
    cell.add_argument(
        "--absence-cut", type=float, default=DEFAULT_CUT, help="I/sigma counted as present"
    )
    cell.add_argument(
        "--method",
        choices=("auto", "clustered", "pooled"),
        default="auto",
        help="per-image cells clustered, or the hits' spots pooled (auto: pooled when the "
        "per-image cells do not agree)",
    )


def run(args: argparse.Namespace) -> int:
    """Run `cell-index` or `cell`; prints what it found."""
    started = time.perf_counter()
    if args.command == "cell-index":
        params = CellFreeParams(max_cell=args.max_cell, max_lattices=max(args.lattices, 1))
        hits, lattices = index_run(args.run, args.out, args.calib, params)
        print(
            f"{args.run}: {hits} hits, {lattices} lattices indexed cell-free in "
            f"{time.perf_counter() - started:.1f} s -> {args.out}/{CELLFREE_FILE}"
        )
        return 0
    result, method = cell_of_results(args.results, args.method)
    absences = rank_by_absences(result, args.absences, args.absence_cut)
    write_report(result, args.out, absences)
    print(f"cell: {summary_line(result.main)} of {result.n_cells} indexed images ({method})")
    print(f"  space groups: {' '.join(result.main.space_groups())}")
    if absences is not None:
        print(f"  by absences ({args.absences}): {absence_line(absences)}")
    for form in result.others:
        print(f"  also a second cell: {summary_line(form)} (minority, not chosen)")
    if result.unassigned:
        print(f"  {result.unassigned} images in no cluster (outliers)")
    print(f"  in {time.perf_counter() - started:.1f} s -> {args.out}/{CELL_FILE}")
    return 0


def rank_by_absences(result: CellResult, mtz: str | None, cut: float) -> list[AbsenceScore] | None:
    """The main cell's candidate space groups scored on a merge's absences (None: no merge)."""
    if mtz is None:
        return None
    return absences_of_mtz(mtz, result.main.space_groups(), result.main.solution.cell, cut=cut)


def absence_line(scores: list[AbsenceScore]) -> str:
    """E.g. 'P 43 21 2 (0/412 disagree), P 41 21 2 (0/412), P 4 21 2 (96/412), ...'."""
    if not scores[0].tested:
        return "no measured reflection tells the candidates apart (merged with screw axes?)"
    parts = [f"{s.space_group} ({s.disagreements}/{s.tested})" for s in scores[:6]]
    return ", ".join(parts) + (" ..." if len(scores) > 6 else "")
