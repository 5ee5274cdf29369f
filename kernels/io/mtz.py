"""MTZ files of merged intensities (IMEAN, SIGIMEAN) via gemmi."""

from __future__ import annotations

from pathlib import Path

import gemmi
import numpy as np

from kernels.crystal.symmetry import CrystalSymmetry


class MtzError(Exception):
    """An MTZ file that cannot be read as merged intensities."""


def write_merged_mtz(
    path, symmetry: CrystalSymmetry, hkl: np.ndarray, intensity, sigma, multiplicity
) -> Path:
    """Unique reflections (in gemmi's asymmetric unit) with IMEAN, SIGIMEAN and NOBS columns."""
    mtz = gemmi.Mtz(with_base=True)
    mtz.spacegroup = symmetry.group
    mtz.set_cell_for_all(symmetry.unit_cell)
    mtz.add_dataset("sfxflow")
    mtz.add_column("IMEAN", "J")
    mtz.add_column("SIGIMEAN", "Q")
    mtz.add_column("NOBS", "I")
    data = np.column_stack([symmetry.to_asu(hkl), intensity, sigma, multiplicity]).astype(
        np.float32
    )
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
