"""Command line of the analysis kernels: ``python -m kernels process|...``."""

from __future__ import annotations

import argparse
import os
import sys

# one image per core: threaded BLAS inside a rank only oversubscribes the cores (10x slower
# small matrix products under load); must be set before numpy is first imported
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from kernels.calibration import CalibrationError  # noqa: E402
from kernels.merging import MergeError  # noqa: E402
from kernels.mtz_io import MtzError  # noqa: E402
from kernels.pipeline import ParamsError  # noqa: E402
from kernels.reflections import ReflectionFileError  # noqa: E402
from kernels.runformat import RunFormatError  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m kernels")
    commands = parser.add_subparsers(dest="command", required=True)
    proc = commands.add_parser("process", help="process a run: calibration, spots, hits, ...")
    proc.add_argument("--run", required=True, help="run directory (<exp>/runs/rNNNN)")
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
        "--batch", type=int, default=4, help="work items handed to a rank per request"
    )
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
    table = commands.add_parser(
        "params", help="the table of trial parameters (Markdown: section, key, meaning, ...)"
    )
    table.add_argument("--out", help="write it to this file (docs/trial-parameters.md)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "process":
            from kernels.process import main as process_main

            return process_main(args)
        if args.command == "merge":
            from kernels.merge import main as merge_main

            return merge_main(args)
        if args.command == "params":
            from kernels.params_table import main as params_main

            return params_main(args)
    except (
        RunFormatError,
        CalibrationError,
        ParamsError,
        MergeError,
        MtzError,
        ReflectionFileError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
