"""What a merge is told besides its results: the trial's and the merge's parameters, and an
optional reference MTZ to scale against (refused unless it is the same crystal)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from kernels.crystal.symmetry import CrystalSymmetry
from kernels.io.mtz import read_intensities
from kernels.merging.algorithm import MergeError, MergeParams

# the trial's integration settings that are the merge's partiality model
TRIAL_PROFILE = {
    "domain_size_a": "trial_domain_size_a",
    "mosaicity_deg": "trial_mosaicity_deg",
    "bandwidth": "trial_bandwidth",
}
CELL_LENGTH_TOLERANCE = 0.01  # fractional
CELL_ANGLE_TOLERANCE = 1.0  # degrees


def parse_value(name: str, text: str, default):
    """`text` as the type of the parameter's default (bools as true/false)."""
    if isinstance(default, bool):
        if text.lower() not in ("true", "false"):
            raise MergeError(f"merge parameter {name}={text!r}: not true or false")
        return text.lower() == "true"
    try:
        return type(default)(text)
    except ValueError:
        raise MergeError(
            f"merge parameter {name}={text!r}: not a {type(default).__name__}"
        ) from None


def merge_params(params_file=None, overrides=()) -> MergeParams:
    """MergeParams from a trial's parameter file and ``NAME=VALUE`` overrides.

    The file's ``integration`` section gives the partiality model the trial estimated with,
    its ``merge`` section any merge parameter; unknown names are refused by name.
    """
    values: dict = {}
    if params_file is not None:
        try:
            data = json.loads(Path(params_file).read_text())
        except (OSError, ValueError) as exc:
            raise MergeError(f"{params_file}: invalid parameters: {exc}") from None
        integration = data.get("integration") or {}
        values.update({TRIAL_PROFILE[k]: v for k, v in integration.items() if k in TRIAL_PROFILE})
        values.update(data.get("merge") or {})
    defaults = {f.name: f.default for f in dataclasses.fields(MergeParams)}
    for item in overrides:
        name, _, text = item.partition("=")
        if name not in defaults:
            raise MergeError(f"unknown merge parameter {name!r}; known: {sorted(defaults)}")
        values[name] = parse_value(name, text, defaults[name])
    unknown = set(values) - set(defaults)
    if unknown:
        raise MergeError(f"unknown merge parameter(s) {sorted(unknown)}; known: {sorted(defaults)}")
    try:
        return MergeParams(**values)
    except TypeError as exc:
        raise MergeError(f"merge parameters: {exc}") from None


def same_cell(a, b) -> bool:
    """Cells equal within 1 % in lengths and 1 degree in angles."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    lengths = np.all(np.abs(a[:3] - b[:3]) <= CELL_LENGTH_TOLERANCE * b[:3])
    return bool(lengths and np.all(np.abs(a[3:] - b[3:]) <= CELL_ANGLE_TOLERANCE))


def load_reference(path, symmetry: CrystalSymmetry) -> tuple[np.ndarray, np.ndarray]:
    """(hkl, IMEAN) of a reference MTZ of the same space group and cell, else MergeError."""
    hkl, intensity, ref = read_intensities(path)
    if ref.group.hm != symmetry.group.hm:
        raise MergeError(
            f"reference {path} is in {ref.space_group}, the results in {symmetry.space_group}"
        )
    if not same_cell(ref.cell, symmetry.cell):
        raise MergeError(
            f"reference {path} has cell {tuple(round(v, 2) for v in ref.cell)}, the results "
            f"{tuple(round(v, 2) for v in symmetry.cell)} (more than 1 % or 1 degree apart)"
        )
    return hkl, intensity
