"""Per-event tags (laser on/off, pump-probe delay, ...) from the DAQ's event table, per image.

The table is a CSV file with a header: ``run,chunk,event`` identify a shot (as the run's
``integrated.h5`` does: its ``run`` attribute and its images' chunk and event), every further
column is a numeric tag. Images without a row get NaN (in no split set).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from kernels.merging.algorithm import MergeError

ID_COLUMNS = ("run", "chunk", "event")

EventTable = dict[str, dict[tuple[str, int, int], float]]  # tag -> (run, chunk, event) -> value


def read_event_table(path) -> EventTable:
    """The tags of the CSV file at `path`; refused naming the file, line and column."""
    path = Path(path)
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise MergeError(f"{path}: unreadable event table ({exc})") from None
    header = list(rows[0]) if rows else []
    missing = [c for c in ID_COLUMNS if c not in header]
    if missing:
        raise MergeError(f"{path}: event table lacks column(s) {missing} (has {header})")
    tags = [c for c in header if c not in ID_COLUMNS]
    if not tags:
        raise MergeError(f"{path}: event table has no tag column besides {list(ID_COLUMNS)}")
    table: EventTable = {tag: {} for tag in tags}
    for line, row in enumerate(rows, start=2):
        try:
            key = (row["run"], int(row["chunk"]), int(row["event"]))
            for tag in tags:
                table[tag][key] = float(row[tag]) if row[tag] not in ("", None) else np.nan
        except (TypeError, ValueError):
            raise MergeError(f"{path}, line {line}: not a number in {row}") from None
    return table


def image_tags(table: EventTable, run: str, chunk, event) -> dict[str, np.ndarray]:
    """Per tag, the values of the images (chunk, event arrays) of `run` (NaN: no row)."""
    return {
        tag: np.array(
            [values.get((run, int(c), int(e)), np.nan) for c, e in zip(chunk, event)], dtype=float
        )
        for tag, values in table.items()
    }
