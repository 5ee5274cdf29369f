"""One event of a run, extracted at the center: ``python -m kernels.io.event_file RUN OUT --chunk C
--event E`` (also ``python -m kernels extract-event``; this module alone starts in 0.2-0.3 s
against 1.3-1.7 s for the kernels' CLI, which imports every command's modules, and the
dashboard waits for it on every such event).

A chunk of a real detector (250 frames of 1-4 Mpix uint16: 0.5-2 GB) is far over the SF API's
download limit (8 MiB by default), so the dashboard asks the center for one event instead: this
command reads it from its chunk and writes a small file laid out as a chunk file of one frame
(``DATA`` (1, rows, cols) as the chunk holds it, its timestamp, photon energy and the detector
geometry), compressed with gzip after a byte shuffle: h5py's built-in filters, readable
wherever h5py is, no plugin needed on either side. The run, chunk and event are recorded as
attributes and checked by :func:`check_event_file` on the reading side.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import h5py

from kernels.io.marker import adler32_file
from kernels.io.runformat import (
    DATA,
    DETECTOR,
    ENERGY,
    TIMESTAMP,
    RunFormatError,
    index_files,
    open_chunks,
)

# gzip level 4 of 9: most of the size gain at a fraction of level 9's time
HELP = "one event of a run into a small HDF5 file"
COMPRESSION = {"compression": "gzip", "compression_opts": 4, "shuffle": True}


def extract_event(run_dir: Path, chunk: int, event: int, out: Path) -> dict:
    """Write event ``event`` of chunk ``chunk`` of ``run_dir`` to ``out`` (whole or not at all).

    Returns
    -------
    dict
        ``bytes`` and ``adler32`` of the written file, for the downloader to check.

    Raises
    ------
    RunFormatError
        The run, chunk or event is not there (the message names it).
    """
    run_dir, out = Path(run_dir), Path(out)
    indexes = index_files(run_dir) if run_dir.is_dir() else []
    if not 0 <= chunk < len(indexes):
        raise RunFormatError(run_dir, f"run has no chunk {chunk} ({len(indexes)} chunks)")
    with open_chunks(run_dir, [indexes[chunk]]) as run:
        if not 0 <= event < run.chunks[0].n_events:
            raise RunFormatError(
                run.chunks[0].path, f"no event {event} ({run.chunks[0].n_events} events)"
            )
        frame = run.read_frame(0, event)
        with h5py.File(run.chunks[0].path, "r") as source:
            geometry = source[DETECTOR].attrs["geometry"]
        part = out.with_name(f".{out.name}.part")
        with h5py.File(part, "w") as f:
            f.create_dataset(DATA, data=frame[None], chunks=(1, *frame.shape), **COMPRESSION)
            f[TIMESTAMP] = [run.timestamp(0, event)]
            f[ENERGY] = [run.photon_energy_ev(0, event)]
            f.require_group(DETECTOR).attrs["geometry"] = geometry
            f.attrs.update(run=run_dir.name, chunk=chunk, event=event)
    os.replace(part, out)
    return {"bytes": out.stat().st_size, "adler32": adler32_file(out)}


def check_event_file(path: Path, run: str, chunk: int, event: int) -> None:
    """The file must be the event asked for, of one frame; else :class:`RunFormatError`."""
    try:
        with h5py.File(path, "r") as f:
            found = (str(f.attrs["run"]), int(f.attrs["chunk"]), int(f.attrs["event"]))
            frames = f[DATA].shape[0]
    except (OSError, KeyError, ValueError) as exc:
        raise RunFormatError(path, f"not an extracted event file: {exc}") from None
    if found != (run, chunk, event) or frames != 1:
        raise RunFormatError(
            path, f"holds {found} ({frames} frames), not event {event} of chunk {chunk} of {run}"
        )


def add_command(commands) -> None:
    """Register ``extract-event`` on the kernels' argument parser."""
    add_arguments(commands.add_parser("extract-event", help=HELP))


def add_arguments(cmd: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    cmd.add_argument("run", help="run directory (<runs>/rNNNN)")
    cmd.add_argument("out", help="the HDF5 file to write (replaced)")
    cmd.add_argument("--chunk", type=int, required=True, help="chunk number (0, 1, ...)")
    cmd.add_argument("--event", type=int, required=True, help="event number in its chunk")


def run(args: argparse.Namespace) -> int:
    """Extract, then print the file's size and Adler-32 as one JSON line."""
    print(json.dumps(extract_event(Path(args.run), args.chunk, args.event, Path(args.out))))
    return 0


def main(argv=None) -> int:
    """``python -m kernels.io.event_file``: a bad run, chunk or event exits 2 naming it."""
    parser = argparse.ArgumentParser(prog="python -m kernels.io.event_file", description=HELP)
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except RunFormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
