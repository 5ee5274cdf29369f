"""Command line of the analysis kernels: ``python -m kernels process|merge ...``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# one image per core: threaded BLAS inside a rank only oversubscribes the cores (10x slower
# small matrix products under load); must be set before numpy is first imported
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from kernels.cell import absences_cli  # noqa: E402
from kernels.cell import cli as cell_cli  # noqa: E402
from kernels.cell.found_cell import with_found_cell  # noqa: E402
from kernels.driver import (  # noqa: E402
    DEFAULT_EVERY_IMAGES,
    DEFAULT_EVERY_SECONDS,
    DEFAULT_LIVE_TIMEOUT,
    JobInputError,
    ProcessOptions,
    configure_logging,
    launched_rank,
    mpi_launched,
    run_mpi,
)
from kernels.foreign import process_foreign_run  # noqa: E402
from kernels.geomrefine import cli as geometry_cli  # noqa: E402
from kernels.io import event_file  # noqa: E402
from kernels.io.geom import GeometryFileError  # noqa: E402
from kernels.io.mtz import MtzError  # noqa: E402
from kernels.io.readers.base import ReaderError  # noqa: E402
from kernels.io.reflections import ReflectionFileError  # noqa: E402
from kernels.io.runformat import RunFormatError  # noqa: E402
from kernels.merging.algorithm import MergeError  # noqa: E402
from kernels.merging.cli import merge_results  # noqa: E402
from kernels.merging.settings import merge_params  # noqa: E402
from kernels.merging.split_cli import merge_split_results  # noqa: E402
from kernels.merging.splits import SplitSpec  # noqa: E402
from kernels.process import load_params, process_run  # noqa: E402
from kernels.stages.calibration import CalibrationError  # noqa: E402
from kernels.stages.params_table import markdown  # noqa: E402
from kernels.stages.pipeline import ParamsError  # noqa: E402
from kernels.stages.trial_detector import TrialGeometryError  # noqa: E402

BAD_INPUT = (
    RunFormatError,
    CalibrationError,
    ParamsError,
    MergeError,
    MtzError,
    ReflectionFileError,
    JobInputError,
    GeometryFileError,
    ReaderError,
    TrialGeometryError,
    *cell_cli.ERRORS,
    *geometry_cli.ERRORS,
)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def add_live_options(proc: argparse.ArgumentParser) -> None:
    """The options of ``process --live``: following a run being acquired, run-so-far merges."""
    proc.add_argument(
        "--live",
        action="store_true",
        help="follow a run still being acquired: process each chunk as its marker "
        "(rNNNN-cNN.closed.json) appears, end once CONCLUDED.json is there and all are done",
    )
    proc.add_argument(
        "--live-timeout",
        type=positive_float,
        default=DEFAULT_LIVE_TIMEOUT,
        metavar="SECONDS",
        help="with --live: stop as stalled (exit code 4) after this long without a new chunk "
        "and without the run marker, publishing what was processed (default %(default)g)",
    )
    proc.add_argument(
        "--merge-every-images",
        type=positive_int,
        default=DEFAULT_EVERY_IMAGES,
        metavar="N",
        help="with --live: publish the run-so-far merge every N merged images "
        "(default %(default)d) ...",
    )
    proc.add_argument(
        "--merge-every-seconds",
        type=positive_float,
        default=DEFAULT_EVERY_SECONDS,
        metavar="M",
        help="... or every M seconds, whichever comes first (default %(default)g)",
    )


def add_merge_command(commands) -> None:
    """``merge``: runs' integrated reflections into one MTZ (or one per pump-probe set)."""
    mrg = commands.add_parser("merge", help="merge runs' integrated reflections into one MTZ")
    mrg.add_argument(
        "--results", required=True, nargs="+", help="result directories of processed runs"
    )
    mrg.add_argument(
        "--out",
        required=True,
        help="merged MTZ file (merge_stats.json and shells.png are written beside it)",
    )
    mrg.add_argument("--truth", help="true intensities (MTZ with IMEAN) to report the CC to truth")
    mrg.add_argument(
        "--reference", help="MTZ (IMEAN) of the same crystal to scale the images against"
    )
    mrg.add_argument(
        "--params",
        help="trial parameter JSON: its integration section is the partiality model, "
        "its merge section merge parameters",
    )
    mrg.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a merge parameter (kernels.merging.MergeParams), repeatable",
    )
    mrg.add_argument("--unmerged-cif", help="also write the scaled unmerged reflections as mmCIF")
    mrg.add_argument(
        "--split",
        help="pump-probe split by a per-event tag: TAG (one merge per value) or TAG=EDGE,EDGE,... "
        "(one per bin); writes split_stats.json and one MTZ per set and per difference",
    )
    mrg.add_argument(
        "--events",
        help="per-event tags, CSV with columns run,chunk,event,<tag>... (for --split; adds to "
        "and overrides the tags the runs' integrated.h5 carry from their files)",
    )
    mrg.add_argument(
        "--split-reference", help="the set the differences are taken against (default: first)"
    )


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kernels")
    commands = parser.add_subparsers(dest="command", required=True)
    proc = commands.add_parser("process", help="process a run: calibration, spots, hits, ...")
    proc.add_argument(
        "--run",
        required=True,
        help="run directory (<exp>/runs/rNNNN), or a folder of facility files (CBF, CXI, ...)",
    )
    proc.add_argument(
        "--geometry",
        help="CrystFEL .geom of a folder of facility files (CBF files carry their own)",
    )
    proc.add_argument(
        "--adu-per-photon",
        type=positive_float,
        default=1.0,
        help="gain of a folder of facility files, if they are not in photons (default 1)",
    )
    proc.add_argument(
        "--event-tag",
        action="append",
        default=[],
        metavar="NAME=FIELD",
        help="a per-event tag of HDF5/CXI facility files (e.g. laser_on=/LCLS/evr41), repeatable",
    )
    proc.add_argument("--out", required=True, help="output directory for the run's results")
    proc.add_argument("--calib", help="calibration file (default <exp>/calib/calibration.h5)")
    proc.add_argument("--params", help="trial parameters, JSON")
    proc.add_argument("--trial", default="default", help="trial name recorded with the results")
    proc.add_argument(
        "--experiment",
        help="experiment the run is logged under in the results DB "
        "(default: the name of the run directory's grandparent, <exp>)",
    )
    proc.add_argument(
        "--db",
        help="results DB URL (sqlite:///path or mysql://user@host:port/db); "
        "with it, or under mpiexec, the MPI driver runs (checkpoint/resume)",
    )
    proc.add_argument(
        "--cache-dir", help="node-local cache of per-rank results (default <out>/cache)"
    )
    proc.add_argument(
        "--batch", type=positive_int, default=4, help="work items handed to a rank per request"
    )
    add_live_options(proc)
    add_merge_command(commands)
    table = commands.add_parser(
        "params", help="the table of trial parameters (Markdown: section, key, meaning, ...)"
    )
    table.add_argument("--out", help="write it to this file (docs/trial-parameters.md)")
    cell_cli.add_commands(commands)
    absences_cli.add_command(commands)
    geometry_cli.add_commands(commands)
    event_file.add_command(commands)
    return parser.parse_args(argv)


def process_options(args: argparse.Namespace) -> ProcessOptions:
    """The one options object of ``process``, from its parsed command line.

    Raises
    ------
    ReaderError
        A geometry file that is not there, ``--live`` on facility files, or ``--event-tag``
        not NAME=/hdf5/field or on the chunk format (its chunk files carry their tags).
    """
    foreign = is_foreign(args)
    if args.geometry and not Path(args.geometry).is_file():
        raise ReaderError(f"{args.geometry}: no such geometry file")
    tags = tuple(tuple(tag.partition("=")[::2]) for tag in args.event_tag)
    if any(not name.isidentifier() or not field.startswith("/") for name, field in tags):
        raise ReaderError(f"--event-tag {args.event_tag}: give NAME=/hdf5/field each")
    if tags and not foreign:
        raise ReaderError("--event-tag is for facility files: chunk files carry their tags")
    if foreign and args.live:
        raise ReaderError(
            f"{args.run}: --live follows the chunk format's chunk markers; a folder of "
            "facility files is processed once it is written"
        )
    optional = {
        "calib": args.calib,
        "params": args.params,
        "cache_dir": args.cache_dir,
        "geometry": args.geometry,
    }
    return ProcessOptions(
        run=Path(args.run),
        out=Path(args.out),
        trial=args.trial,
        experiment=args.experiment,
        db=args.db,
        batch=args.batch,
        live=args.live,
        live_timeout=args.live_timeout,
        merge_every_images=args.merge_every_images,
        merge_every_seconds=args.merge_every_seconds,
        foreign=foreign,
        adu_per_photon=args.adu_per_photon,
        event_tags=tags,
        **{key: Path(value) if value else None for key, value in optional.items()},
    )


def process(options: ProcessOptions) -> int:
    """``process``: the MPI driver with a results DB or under mpiexec, else one process."""
    if options.db or mpi_launched() or options.live:
        result = run_mpi(options)
        if result.message:  # a bad chunk met mid-run (exit code 2) is an error message
            print(result.message, file=sys.stderr if result.exit_code == 2 else sys.stdout)
        return result.exit_code
    if options.foreign:
        return process_foreign(options)
    try:
        params = load_params(options.params)
    except ParamsError as exc:
        raise SystemExit(str(exc)) from None  # exit 1 with the message, as it always has
    summary = process_run(options.run, options.out, options.calib, params, options.trial)
    t = summary["timings"]
    print(
        f"{summary['run']}: {summary['images']} images, {summary['hits']} hits "
        f"({summary['spots_per_hit']:.0f} spots/hit), {summary['indexed']} indexed, "
        f"{summary['refined']} refined, {summary['integrated']} integrated in "
        f"{t['wall_seconds']:.1f} s ({t['images_per_second']:.1f} images/s) "
        f"-> {options.out / 'summary.json'}"
    )
    return 0


def is_foreign(args: argparse.Namespace) -> bool:
    """A run of facility files rather than the chunk format: a geometry given, or CBF or
    XTC2 files (the reader then says what is missing)."""
    run = Path(args.run)
    own_kinds = ("*.cbf", "*.xtc2")
    return bool(args.geometry) or (run.is_dir() and any(any(run.glob(k)) for k in own_kinds))


def process_foreign(options: ProcessOptions) -> int:
    """``process`` on facility files in this process (the MPI driver runs them under mpiexec
    or with ``--db``)."""
    params = load_params(options.params)
    summary = process_foreign_run(
        [options.run],
        options.out,
        str(options.geometry) if options.geometry else None,
        params,
        options.adu_per_photon,
        options.trial,
        dict(options.event_tags),
    )
    print(
        f"{summary['run']}: {summary['images']} images, {summary['hits']} hits, "
        f"{summary['indexed']} indexed, {summary['refined']} refined, "
        f"{summary['integrated']} integrated -> {options.out / 'summary.json'}"
    )
    return 0


def merge(args: argparse.Namespace) -> int:
    """``merge``: merge the runs' reflections and print the headline statistics."""
    params = merge_params(args.params, args.set)
    if args.split:
        return merge_split(args, params)
    stats = merge_results(
        args.results, args.out, args.truth, params, args.reference, args.unmerged_cif
    )
    o = stats["overall"]
    truth = f", CC to truth {o['cc_truth']:.3f}" if "cc_truth" in o else ""
    print(
        f"merged {stats['images']} images, {stats['observations']} observations -> "
        f"{o['n_unique']} unique to {o['d_min']:.2f} A: completeness {o['completeness']:.3f}, "
        f"multiplicity {o['multiplicity']:.1f}, CC1/2 {o['cc_half']:.3f}{truth}, error model "
        f"a={stats['error_model']['a']:.2f} b={stats['error_model']['b']:.3f} "
        f"in {stats['seconds']:.1f} s -> {args.out}"
    )
    return 0


def merge_split(args: argparse.Namespace, params) -> int:
    """``merge --split``: one merge per set and the differences, printed in one line each."""
    spec = SplitSpec.parse(args.split, args.split_reference)
    result = merge_split_results(
        args.results, args.out, spec, args.events, args.truth, params, args.reference
    )
    for label, stats in result["sets"].items():
        o = stats["overall"]
        print(
            f"set {spec.tag}={label}: {stats['images']} images, {o['n_unique']} unique, "
            f"completeness {o['completeness']:.3f}, CC1/2 {o['cc_half']:.3f}"
        )
    for label, diff in result["differences"].items():
        print(
            f"{spec.tag}={label} - {diff['reference']}: Riso {diff['riso']:.3f}, "
            f"CCiso {diff['cc_iso']:.3f} -> {diff['mtz']}"
        )
    return 0


def parameter_table(out: str | None) -> int:
    """``params``: the table of trial parameters as Markdown, printed or written to ``out``."""
    text = markdown()
    if out:
        Path(out).write_text(text)
        print(f"wrote {out}")
    else:
        print(text, end="")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    configure_logging(launched_rank())
    try:
        if args.command == "process":
            return process(process_options(args))
        if args.command == "merge":
            return merge(args)
        if args.command == "params":
            return parameter_table(args.out)
        if args.command in ("cell", "cell-index"):
            return cell_cli.run(args)
        if args.command == "absences":
            return absences_cli.run(args)
        if args.command == "refine-geometry":
            return geometry_cli.run(args, with_found_cell)
        if args.command == "extract-event":
            return event_file.run(args)
    except BAD_INPUT as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
