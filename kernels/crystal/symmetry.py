"""Crystal symmetry on Miller indices, vectorised: the target crystal, equivalent reflections,
the lattice's own symmetry (orientation equivalence) and the indexing ambiguity.

Rotations act on Miller indices as row vectors, ``h' = h @ R`` (gemmi's convention for
``Op.apply_to_hkl``). Equivalent reflections are represented by one integer *key*: the largest
packed index among all symmetry mates and their Friedel mates, so grouping never needs gemmi
per reflection.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import gemmi
import numpy as np

from kernels.crystal.geometry import reciprocal_basis

INDEX_BITS = 8  # packed keys hold |h|, |k|, |l| < 128
INDEX_OFFSET = 1 << (INDEX_BITS - 1)
N_KEYS = 1 << (3 * INDEX_BITS)


class SymmetryError(ValueError):
    """A space group or unit cell that cannot describe a crystal."""


def parse_space_group(name: str) -> gemmi.SpaceGroup:
    """The gemmi space group called `name` (Hermann-Mauguin, Hall-free), or SymmetryError."""
    sg = gemmi.find_spacegroup_by_name(str(name))
    if sg is None:
        raise SymmetryError(f"unknown space group {name!r}")
    return sg


def check_cell(cell) -> tuple[float, ...]:
    """Six positive cell parameters with angles in (0, 180) forming a real cell, else SymmetryError."""
    cell = tuple(float(v) for v in cell)
    if len(cell) != 6 or min(cell[:3]) <= 0 or not all(0 < a < 180 for a in cell[3:]):
        raise SymmetryError(f"unit cell {cell} is not (a, b, c > 0, angles in (0, 180))")
    if not gemmi.UnitCell(*cell).volume > 0:
        raise SymmetryError(f"unit cell {cell} has no volume")
    return cell


def rotations(ops) -> np.ndarray:
    """Integer rotation matrices (n, 3, 3) of gemmi operations."""
    return np.array([op.rot for op in ops], dtype=np.int64) // gemmi.Op.DEN


def pack(hkl: np.ndarray) -> np.ndarray:
    """Pack Miller indices (n, 3) into int64 keys; SymmetryError if an index does not fit."""
    hkl = np.asarray(hkl, dtype=np.int64)
    if hkl.size and np.abs(hkl).max() >= INDEX_OFFSET:
        raise SymmetryError(
            f"Miller index {int(np.abs(hkl).max())} too large to merge (limit {INDEX_OFFSET - 1})"
        )
    shifted = hkl + INDEX_OFFSET
    return (shifted[:, 0] << (2 * INDEX_BITS)) | (shifted[:, 1] << INDEX_BITS) | shifted[:, 2]


def unpack(keys: np.ndarray) -> np.ndarray:
    """Miller indices (n, 3) of packed keys."""
    keys = np.asarray(keys, dtype=np.int64)
    mask = (1 << INDEX_BITS) - 1
    return (
        np.stack(
            [(keys >> (2 * INDEX_BITS)) & mask, (keys >> INDEX_BITS) & mask, keys & mask], axis=1
        )
        - INDEX_OFFSET
    )


class KeyIndex:
    """Maps packed Miller keys of observations to unique reflections, in O(n) with a lookup table."""

    def __init__(self, raw_keys: np.ndarray):
        present = np.zeros(N_KEYS, dtype=bool)
        present[raw_keys] = True
        self.unique = np.flatnonzero(present)
        table = np.full(N_KEYS, -1, dtype=np.int32)
        table[self.unique] = np.arange(len(self.unique), dtype=np.int32)
        self.inverse = table[raw_keys]


@dataclass(frozen=True)
class CrystalSymmetry:
    """The target crystal: unit cell and space group, with the derived symmetry operators."""

    cell: tuple[float, ...]
    space_group: str

    @classmethod
    def create(cls, cell, space_group: str) -> CrystalSymmetry:
        """Validated construction (SymmetryError names the bad cell or space group)."""
        sg = parse_space_group(space_group)
        return cls(check_cell(cell), sg.hm)

    @cached_property
    def group(self) -> gemmi.SpaceGroup:
        return parse_space_group(self.space_group)

    @cached_property
    def unit_cell(self) -> gemmi.UnitCell:
        return gemmi.UnitCell(*self.cell)

    @cached_property
    def B(self) -> np.ndarray:
        """Reciprocal basis (columns a*, b*, c*), 1/Angstrom."""
        return reciprocal_basis(self.cell)

    @cached_property
    def centring_vectors(self) -> np.ndarray:
        """The lattice's centring translations (k, 3), fractional; (0, 0, 0) first."""
        return np.array(self.group.operations().cen_ops, dtype=float).reshape(-1, 3) / gemmi.Op.DEN

    @cached_property
    def laue_rotations(self) -> np.ndarray:
        """Point-group rotations plus their Friedel mates (n, 3, 3): all merging equivalences."""
        rots = rotations(self.group.operations().sym_ops)
        return np.concatenate([rots, -rots])

    @cached_property
    def lattice_rotations(self) -> np.ndarray:
        """Proper rotations of the lattice (metric) symmetry: orientations that fit the spots equally."""
        ops = gemmi.find_lattice_symmetry(self.unit_cell, self.group.centring_type(), 2.0)
        rots = rotations(ops.sym_ops)
        return rots[np.round(np.linalg.det(rots)).astype(int) == 1]

    @cached_property
    def ambiguity_rotations(self) -> np.ndarray:
        """Reindexing operators (identity first) relating settings the data cannot tell apart.

        One per coset of the crystal's Laue group in the lattice's symmetry: just the identity
        when the space group has no indexing ambiguity (e.g. P 43 21 2), two for P 43.
        """
        reps: list[np.ndarray] = []
        covered: set[bytes] = set()
        for r in self.lattice_rotations:
            if r.tobytes() in covered:
                continue
            reps.append(r)
            covered |= {(r @ g).tobytes() for g in self.laue_rotations} | {
                (g @ r).tobytes() for g in self.laue_rotations
            }
        identity = np.eye(3, dtype=np.int64)
        reps.sort(key=lambda r: not np.array_equal(r, identity))
        return np.array(reps)

    def cell_parameter_groups(self) -> list[list[int]]:
        """Cell parameters (indices into a, b, c, alpha, beta, gamma) free to refine, grouped
        where the crystal system ties them together; angles it fixes are not listed."""
        system = self.group.crystal_system_str()
        if system == "cubic":
            return [[0, 1, 2]]
        if system == "trigonal" and self.group.ext == "R":
            return [[0, 1, 2], [3, 4, 5]]
        if system in ("tetragonal", "trigonal", "hexagonal"):
            return [[0, 1], [2]]
        if system == "orthorhombic":
            return [[0], [1], [2]]
        if system == "monoclinic":
            unique = [i for i in (3, 4, 5) if abs(self.cell[i] - 90.0) > 1e-6] or [4]
            return [[0], [1], [2], unique[:1]]
        return [[i] for i in range(6)]

    def orientation_difference_deg(self, U: np.ndarray, U_other: np.ndarray) -> float:
        """Smallest rotation (degrees) between two orientations over the lattice's symmetry,
        i.e. between two indexings of the same crystal that may differ by a lattice operator."""
        B, Binv = self.B, np.linalg.inv(self.B)
        cosines = [
            (np.trace(U @ B @ R.T @ Binv @ U_other.T) - 1) / 2 for R in self.lattice_rotations
        ]
        return float(np.degrees(np.arccos(np.clip(max(cosines), -1.0, 1.0))))

    def absent(self, hkl: np.ndarray) -> np.ndarray:
        """Boolean mask of systematically absent reflections."""
        ops = self.group.operations()
        return np.array(
            [ops.is_systematically_absent([int(v) for v in h]) for h in hkl], dtype=bool
        )

    def canonical_keys(self, hkl: np.ndarray) -> np.ndarray:
        """One key per group of symmetry-equivalent reflections (Friedel mates merged)."""
        hkl = np.asarray(hkl, dtype=np.int64)
        mates = np.einsum("ni,rij->rnj", hkl, self.laue_rotations)
        return pack(mates.reshape(-1, 3)).reshape(len(self.laue_rotations), -1).max(axis=0)

    def to_asu(self, hkl: np.ndarray) -> np.ndarray:
        """Reflections mapped into gemmi's reciprocal asymmetric unit (for writing MTZ files)."""
        asu = gemmi.ReciprocalAsu(self.group)
        ops = self.group.operations()
        return np.array(
            [asu.to_asu([int(v) for v in h], ops)[0] for h in hkl], dtype=np.int64
        ).reshape(-1, 3)

    def unique_reflections(self, d_min: float, d_max: float = 0.0) -> np.ndarray:
        """Every symmetry-unique, non-absent reflection between d_max and d_min (n, 3)."""
        return gemmi.make_miller_array(self.unit_cell, self.group, d_min, d_max).astype(np.int64)

    def resolution(self, hkl: np.ndarray) -> np.ndarray:
        """d-spacing (Angstrom) of each reflection."""
        return 1.0 / np.linalg.norm(np.asarray(hkl, dtype=float) @ self.B.T, axis=1)
