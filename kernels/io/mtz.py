"""MTZ files of merged intensities (IMEAN, SIGIMEAN; I(+), SIGI(+), I(-), SIGI(-); FreeR_flag)
via gemmi."""

from __future__ import annotations

from pathlib import Path

import gemmi
import numpy as np

from kernels.crystal.symmetry import CrystalSymmetry


class MtzError(Exception):
    """An MTZ file that cannot be read as merged intensities."""


def write_merged_mtz(
    path,
    symmetry: CrystalSymmetry,
    hkl: np.ndarray,
    intensity,
    sigma,
    multiplicity,
    anomalous=None,
    free_flags=None,
) -> Path:
    """Unique reflections (in gemmi's asymmetric unit) with IMEAN, SIGIMEAN and NOBS columns.

    anomalous : optional (I+, SIGI+, I-, SIGI-) in gemmi's Friedel convention (NaN: missing).
    free_flags : optional FreeR_flag per reflection.
    """
    mtz = gemmi.Mtz(with_base=True)
    mtz.spacegroup = symmetry.group
    mtz.set_cell_for_all(symmetry.unit_cell)
    mtz.add_dataset("sfxflow")
    columns = [("IMEAN", "J", intensity), ("SIGIMEAN", "Q", sigma)]
    if anomalous is not None:
        labels = (("I(+)", "K"), ("SIGI(+)", "M"), ("I(-)", "K"), ("SIGI(-)", "M"))
        columns += [(label, kind, values) for (label, kind), values in zip(labels, anomalous)]
    columns.append(("NOBS", "I", multiplicity))
    if free_flags is not None:
        columns.append(("FreeR_flag", "I", free_flags))
    for label, kind, _ in columns:
        mtz.add_column(label, kind)
    values = [np.asarray(v, dtype=np.float64) for *_, v in columns]
    data = np.column_stack([symmetry.to_asu(hkl), *values]).astype(np.float32)
    mtz.set_data(data)
    mtz.write_to_file(str(path))
    return Path(path)


def read_intensities(path, column: str = "IMEAN") -> tuple[np.ndarray, np.ndarray, CrystalSymmetry]:
    """Miller indices (n, 3), intensities (n,) and crystal symmetry of an MTZ file."""
    try:
        mtz = gemmi.read_mtz_file(str(path))
    except (RuntimeError, ValueError, OSError) as exc:
        raise MtzError(f"{path}: cannot read MTZ ({exc})") from None
    if mtz.column_with_label(column) is None:
        raise MtzError(f"{path}: no {column} column")
    data = np.array(mtz, copy=False)
    labels = [c.label for c in mtz.columns]
    hkl = data[:, :3].astype(np.int64)
    values = data[:, labels.index(column)].astype(np.float64)
    ok = np.isfinite(values)
    cell = mtz.cell
    symmetry = CrystalSymmetry.create(
        (cell.a, cell.b, cell.c, cell.alpha, cell.beta, cell.gamma), mtz.spacegroup.hm
    )
    return hkl[ok], values[ok], symmetry
