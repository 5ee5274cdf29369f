"""Files for downstream tools: a CrystFEL ``.hkl`` pair of half sets, unmerged scaled
reflections as mmCIF, and the FreeR flags of the merged MTZ.

* ``.hkl``: CrystFEL's reflection list version 2.0 (as partialator writes ``out.hkl1`` and
  ``out.hkl2`` beside ``out.hkl``), symmetry its Laue group, since Friedel mates are merged.
* mmCIF: the ``_diffrn_refln`` loop of every observation kept by the merge, scaled and
  partiality-corrected, ``scale_group_code`` the image (gemmi reads it as a refln block).
* FreeR_flag: 0 for the free set, 1..n-1 otherwise (CCP4's convention); drawn from the
  reflection's own key, so a reflection keeps its flag in every merge of the same crystal.
"""

from __future__ import annotations

from pathlib import Path

import gemmi
import numpy as np

from kernels.crystal.symmetry import CrystalSymmetry, unpack

HKL_HEADER = "CrystFEL reflection list version 2.0\nSymmetry: {symmetry}\n"
HKL_COLUMNS = "   h    k    l          I    phase   sigma(I)   nmeas\n"
HKL_END = "End of reflections\n"


def free_flags(keys: np.ndarray, fraction: float) -> np.ndarray:
    """FreeR_flag per reflection: 0 for about `fraction` of them, else 1..n-1 (deterministic)."""
    n_flags = max(2, int(round(1.0 / fraction)))
    # a multiplicative hash of the packed key spreads neighbouring reflections over all flags
    mixed = (np.asarray(keys, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(33)
    return (mixed % np.uint64(n_flags)).astype(np.int64)


def write_crystfel_hkl(path, symmetry: CrystalSymmetry, hkl, intensity, sigma, nmeas) -> Path:
    """One CrystFEL reflection list (finite intensities only)."""
    ok = np.isfinite(intensity) & np.isfinite(sigma)
    rows = np.column_stack([hkl[ok], intensity[ok], sigma[ok], nmeas[ok]])
    with open(path, "w") as f:
        f.write(HKL_HEADER.format(symmetry=symmetry.group.laue_str()) + HKL_COLUMNS)
        np.savetxt(f, rows, fmt="%4d %4d %4d %10.2f        - %10.2f %7d")
        f.write(HKL_END)
    return Path(path)


def write_half_sets(stem, symmetry: CrystalSymmetry, merged) -> tuple[Path, Path]:
    """``<stem>.hkl1`` and ``<stem>.hkl2``: the two half sets with their own sigmas and counts."""
    hkl = symmetry.to_asu(unpack(merged.keys))
    paths = []
    for h, intensity in enumerate((merged.half1, merged.half2)):
        sigma, nmeas = merged.half_sigma[h], merged.half_multiplicity[h]
        paths.append(
            write_crystfel_hkl(f"{stem}.hkl{h + 1}", symmetry, hkl, intensity, sigma, nmeas)
        )
    return paths[0], paths[1]


def write_unmerged_cif(path, symmetry: CrystalSymmetry, scaled) -> Path:
    """The merge's kept observations, scaled, as an mmCIF ``_diffrn_refln`` loop."""
    cell = symmetry.cell
    head = [
        "data_sfxflow_unmerged",
        f"_cell.length_a {cell[0]:.4f}",
        f"_cell.length_b {cell[1]:.4f}",
        f"_cell.length_c {cell[2]:.4f}",
        f"_cell.angle_alpha {cell[3]:.3f}",
        f"_cell.angle_beta {cell[4]:.3f}",
        f"_cell.angle_gamma {cell[5]:.3f}",
        f"_symmetry.space_group_name_H-M '{symmetry.space_group}'",
        f"_symmetry.Int_Tables_number {symmetry.group.number}",
        "loop_",
        "_diffrn_refln.diffrn_id",
        "_diffrn_refln.id",
        "_diffrn_refln.scale_group_code",
        "_diffrn_refln.index_h",
        "_diffrn_refln.index_k",
        "_diffrn_refln.index_l",
        "_diffrn_refln.intensity_net",
        "_diffrn_refln.intensity_sigma",
    ]
    n = len(scaled.intensity)
    rows = np.column_stack(
        [
            np.ones(n),
            np.arange(1, n + 1),
            scaled.image + 1,
            scaled.hkl,
            scaled.intensity,
            scaled.sigma,
        ]
    )
    with open(path, "w") as f:
        f.write("\n".join(head) + "\n")
        np.savetxt(f, rows, fmt="%d %d %d %d %d %d %.4g %.4g")
    return Path(path)


def write_difference_mtz(path, symmetry: CrystalSymmetry, diff) -> Path:
    """An isomorphous difference (:class:`kernels.merging.splits.IsoDifference`) as MTZ:
    ``DELTA_I``, ``SIGDELTA_I``, the set's scaled ``I`` and the reference's ``I_REF``."""
    mtz = gemmi.Mtz(with_base=True)
    mtz.spacegroup = symmetry.group
    mtz.set_cell_for_all(symmetry.unit_cell)
    mtz.add_dataset("sfxflow")
    for label, kind in (("DELTA_I", "J"), ("SIGDELTA_I", "Q"), ("I", "J"), ("I_REF", "J")):
        mtz.add_column(label, kind)
    hkl = symmetry.to_asu(unpack(diff.keys))
    values = (diff.delta, diff.sigma, diff.scaled, diff.reference)
    mtz.set_data(np.column_stack([hkl, *values]).astype(np.float32))
    mtz.write_to_file(str(path))
    return Path(path)
