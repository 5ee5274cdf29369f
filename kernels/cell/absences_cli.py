"""``python -m kernels absences --cell cell.json --merged merged.mtz --out absences.json``: the
found lattice's space groups ranked by a merge's systematic absences, and the group they choose
(or why they cannot), from the cell already determined (no second determination)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from kernels.cell.absences import (
    DEFAULT_CUT,
    AbsenceError,
    AbsenceScore,
    axis_settings,
    choose_space_group,
    mtz_i_over_sigma,
    score_absences,
    symmorphic_group,
)
from kernels.cell.cli import absence_line
from kernels.io.atomic import write_json

ABSENCES_FILE = "absences.json"


def add_command(commands) -> None:
    """Register ``absences`` on the kernels' argument parser."""
    cmd = commands.add_parser("absences", help="rank the found lattice's groups by absences")
    cmd.add_argument("--cell", required=True, help="cell.json of `python -m kernels cell`")
    cmd.add_argument(
        "--merged",
        required=True,
        help="merged MTZ (IMEAN) in the found cell and the lattice's group without screw axes "
        "or glides (e.g. P 2 2 2 for oP)",
    )
    cmd.add_argument("--out", required=True, help=f"the ranking as JSON ({ABSENCES_FILE})")
    cmd.add_argument(
        "--absence-cut", type=float, default=DEFAULT_CUT, help="I/sigma counted as present"
    )


def read_cell_report(path: str) -> dict:
    """The main cell of a ``cell.json``.

    Raises
    ------
    AbsenceError
        No such file, not JSON, or no main cell with its lattice, cell and space groups.
    """
    try:
        main = json.loads(Path(path).read_text())["main"]
        return {key: main[key] for key in ("bravais", "cell", "space_groups")}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AbsenceError(
            f"{path}: not a cell report of `python -m kernels cell` ({exc!r})"
        ) from None


def absences_report(
    main: dict, merged: str, scores: list[AbsenceScore], cut: float, weak_fraction: float
) -> dict:
    """The JSON written: the merge scored, how much of it is weak, the ranking best first and
    the choice."""
    return {
        "bravais": main["bravais"],
        "merged_in": symmorphic_group(main["bravais"]),
        "merged": str(merged),
        "cut": cut,
        "weak_fraction": round(weak_fraction, 3),
        "ranking": [s.as_json() for s in scores],
        "choice": choose_space_group(scores, weak_fraction).as_json(),
    }


def run(args: argparse.Namespace) -> int:
    """Score, write and print the ranking and the choice."""
    main = read_cell_report(args.cell)
    hkl, z = mtz_i_over_sigma(args.merged, main["cell"])
    cut = args.absence_cut
    scores = score_absences(hkl, z, axis_settings(main["space_groups"]), cut)
    report = absences_report(main, args.merged, scores, cut, float(np.mean(z < cut)))
    write_json(Path(args.out), report)
    choice = report["choice"]
    print(f"by absences ({args.merged}): {absence_line(scores)}")
    print(f"  {report['weak_fraction']:.0%} of the merge under I/sigma {cut:g}")
    print(f"  chosen: {choice['space_group'] or 'none'} ({choice['reason']}) -> {args.out}")
    return 0
