"""Which pixels of a CrystFEL-described detector to use: bad regions, ``no_index`` panels and
the bad-pixel mask fields a geometry names, per panel of the stacked frame: the classic
``mask``, ``mask_file``, ``mask_good``, ``mask_bad`` and CrystFEL 0.10's numbered masks
``maskN_data``, ``maskN_file``, ``maskN_goodbits``, ``maskN_badbits`` (N = 0-7).

A pixel is good when, in every mask, its value has every good bit set and no bad bit
(CrystFEL's rule). A mask is read from its file key (relative to the geometry file's folder
unless absolute), else from the first data file; a mask with an event axis gives its first
event's pixels (one mask per run).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from kernels.crystal.detector import Detector
from kernels.io.geom import GeomFile
from kernels.io.geom_detector import bad_pixel_masks
from kernels.io.readers.base import ReaderError


def block_shapes(detector: Detector) -> list[tuple[int, int]]:
    """(rows, cols) each data block must have at least, from its panels' ranges."""
    blocks = max(p.block for p in detector.panels) + 1
    return [
        (
            max(p.ss1 for p in detector.panels if p.block == b),
            max(p.fs1 for p in detector.panels if p.block == b),
        )
        for b in range(blocks)
    ]


def _key(geom: GeomFile, values: dict[str, str], key: str) -> str | None:
    """A panel's mask key, else the file's (a mask line after the panels is global)."""
    return values.get(key, geom.globals.get(key))


@dataclass(frozen=True)
class MaskKeys:
    """The names of one mask's keys: its dataset, file, good bits and bad bits."""

    data: str
    file: str
    good: str
    bad: str


CLASSIC_MASK = MaskKeys("mask", "mask_file", "mask_good", "mask_bad")
_NUMBERED = re.compile(r"^mask(\d)_data$")


def mask_keys(geom: GeomFile, values: dict[str, str]) -> list[MaskKeys]:
    """The masks a panel uses: the classic one and each numbered ``maskN_data`` it or the file
    names, in number order."""
    numbers = sorted({m.group(1) for k in (*values, *geom.globals) if (m := _NUMBERED.match(k))})
    numbered = [
        MaskKeys(f"mask{n}_data", f"mask{n}_file", f"mask{n}_goodbits", f"mask{n}_badbits")
        for n in numbers
    ]
    return [CLASSIC_MASK, *numbered]


def _bits(geom: GeomFile, panel: str, values: dict[str, str], key: str) -> int:
    text = _key(geom, values, key) or "0"
    try:
        return int(text, 0)
    except ValueError:
        raise geom.error(f"{key} = {text!r} is not an integer", panel, key) from None


def _mask_file(geom: GeomFile, values: dict[str, str], key: str, first_data_file: str) -> str:
    name = _key(geom, values, key)
    if not name:
        return first_data_file
    path = Path(name)
    return str(path if path.is_absolute() else Path(geom.path).parent / path)


def _panel_mask(geom, name, values, keys: MaskKeys, panel, dims, first_data_file):
    """Good pixels of one panel from one mask, or None when the geometry names no such mask."""
    field = _key(geom, values, keys.data)
    if not field:
        return None
    path = _mask_file(geom, values, keys.file, first_data_file)
    try:
        with h5py.File(path, "r") as f:
            if field not in f:
                raise geom.error(f"{path} has no mask dataset {field}", name, keys.data)
            data = f[field]
            roles = dims if data.ndim == len(dims) else [d for d in dims if d != "%"]
            where = {"%": 0, "ss": slice(panel.ss0, panel.ss1), "fs": slice(panel.fs0, panel.fs1)}
            block = data[tuple(where[d] if d in where else int(d) for d in roles)]
    except OSError as exc:
        raise ReaderError(f"{path}: not a readable mask file ({exc})") from None
    block = np.asarray(block.T if roles.index("fs") < roles.index("ss") else block).astype(np.int64)
    good, bad = _bits(geom, name, values, keys.good), _bits(geom, name, values, keys.bad)
    return ((block & good) == good) & ((block & bad) == 0)


def good_pixels(
    geom: GeomFile, panel_values: list[dict[str, str]], full: Detector, panel_dims, data_file: str
) -> np.ndarray:
    """(panels, rows, cols) True on the pixels to use, panels in the geometry's order.

    `panel_values` are the panels' keys with the reader's defaults, `full` the detector with
    the panels' ranges in their data blocks, `panel_dims(values)` a panel's dimension roles and
    `data_file` the run's first data file.
    """
    bad = bad_pixel_masks(geom, full, block_shapes(full))
    out = []
    for name, values, p in zip(geom.panels, panel_values, full.panels):
        good = ~bad[p.block][p.ss0 : p.ss1, p.fs0 : p.fs1]
        for keys in mask_keys(geom, values):
            from_field = _panel_mask(geom, name, values, keys, p, panel_dims(values), data_file)
            if from_field is not None:
                good &= from_field
        out.append(good)
    return np.stack(out)
