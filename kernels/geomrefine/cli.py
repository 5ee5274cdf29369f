"""``python -m kernels refine-geometry``: a refined ``.geom`` from many indexed stills."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from kernels.crystal.detector import Detector
from kernels.geomrefine.refine import GeometryParams, GeometryRefinementError, refine_geometry
from kernels.geomrefine.report import MAP_FILE, REPORT_FILE, describe, write_residual_map
from kernels.geomrefine.spots import IndexedSpots, SpotsFileError, read_spots_files
from kernels.io.geom import GeometryFileError, read_geom, write_geom
from kernels.io.geom_detector import from_detector, to_detector

ERRORS = (GeometryRefinementError, SpotsFileError, GeometryFileError)
REFINED_GEOM = "refined.geom"
FoundCell = Callable[[IndexedSpots, dict], tuple[IndexedSpots, int]]


def add_commands(commands) -> None:
    """Register ``refine-geometry`` on the kernels' argument parser."""
    cmd = commands.add_parser("refine-geometry", help="refine the detector geometry from stills")
    cmd.add_argument("--geometry", required=True, help="starting CrystFEL .geom file")
    cmd.add_argument(
        "--spots",
        required=True,
        nargs="+",
        help="indexed spots (HDF5, kernels.geomrefine.spots; several files: several runs)",
    )
    cmd.add_argument("--out", required=True, help=f"output folder ({REFINED_GEOM}, {REPORT_FILE})")
    cmd.add_argument(
        "--collection",
        default=None,
        help="rigid_group_collection of the .geom whose groups move (default: its first one, "
        "else every panel); 'panels' moves every panel on its own",
    )
    cmd.add_argument("--min-spots", type=int, default=GeometryParams.min_spots)
    cmd.add_argument(
        "--cell",
        help="cell.json of `python -m kernels cell`: each image's cell-free lattice is given "
        "that determined cell, its shape held and its scale refined with the distance (images of "
        "another lattice left out); default: each image's own cell, held",
    )


def refined_groups(detector: Detector, collection: str | None) -> list[list[str]]:
    """The panel-name lists that move as one, from a collection of the geometry's rigid groups."""
    collections = [k for k in detector.groups if k.startswith("rigid_group_collection_")]
    if collection == "panels" or (collection is None and not collections):
        return [[p.name] for p in detector.panels]
    key = collections[0] if collection is None else f"rigid_group_collection_{collection}"
    if key not in detector.groups:
        names = [c.removeprefix("rigid_group_collection_") for c in collections]
        raise GeometryFileError(f"no rigid_group_collection {collection!r} (the file has {names})")
    return [detector.group_panels(member) for member in detector.groups[key]]


def spots_with_cell(spots: IndexedSpots, cell_file, found_cell: FoundCell | None):
    """`spots` with the cell of `cell_file` (via `found_cell`), and the line that says so.

    Raises
    ------
    SpotsFileError
        An unreadable cell file, or one that is not a cell report.
    """
    if cell_file is None:
        return spots, "each image's own cell"
    assert found_cell is not None, "--cell needs the cell kernels' with_found_cell"
    try:
        found, left_out = found_cell(spots, json.loads(Path(cell_file).read_text()))
    except (OSError, ValueError, KeyError) as exc:
        raise SpotsFileError(f"{cell_file}: not a cell report of `kernels cell` ({exc})") from None
    return found, f"the cell of {cell_file} ({left_out} images of another lattice left out)"


def run(args: argparse.Namespace, found_cell: FoundCell | None = None) -> int:
    """Refine, write the refined .geom, the JSON report and the residual map; print the rms.

    `found_cell` gives each image the determined cell of ``--cell`` (it lives with the cell
    kernels, which read this room's spots).
    """
    started = time.perf_counter()
    detector = to_detector(read_geom(args.geometry))
    spots, held_cell = spots_with_cell(read_spots_files(args.spots), args.cell, found_cell)
    if len(spots) and spots.panel.max() >= len(detector.panels):
        raise SpotsFileError(f"{' '.join(args.spots)}: spots name panel {spots.panel.max()}, "
                             f"the geometry has {len(detector.panels)}")  # fmt: skip
    groups = refined_groups(detector, args.collection)
    # a cell found through this geometry carries its distance error: its scale is refined too
    params = GeometryParams(min_spots=args.min_spots, refine_cell_scale=args.cell is not None)
    result = refine_geometry(detector, spots, groups, params)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_geom(from_detector(result.detector, str(out / REFINED_GEOM)), out / REFINED_GEOM)
    (out / REPORT_FILE).write_text(json.dumps(describe(detector, result, spots), indent=1))
    write_residual_map(detector, spots, result, out / MAP_FILE)
    print(
        f"geometry: rms {result.rms_before_px:.3f} -> {result.rms_after_px:.3f} px over "
        f"{len(spots)} spots of {len(spots.A)} images with {held_cell}; "
        f"{len(result.refined_groups)} groups "
        f"refined, {len(result.held_groups)} held (fewer than {args.min_spots} spots); "
        f"{time.perf_counter() - started:.1f} s -> {out / REFINED_GEOM}"
    )
    return 0
