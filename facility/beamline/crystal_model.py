"""A generated protein-like crystal: its model, structure factors and true merged intensities."""

from __future__ import annotations

from dataclasses import dataclass

import gemmi
import numpy as np

from kernels.crystal.geometry import reciprocal_basis

ELEMENTS = ("C",) * 63 + ("N",) * 17 + ("O",) * 19 + ("S",)  # protein-like composition


@dataclass(frozen=True)
class Crystal:
    """Intensities of every reflection (P1, full sphere) to `d_min` of a generated model.

    Attributes
    ----------
    cell : (a, b, c, alpha, beta, gamma)
    space_group : Hermann-Mauguin symbol
    B : reciprocal basis (columns a*, b*, c*)
    hkl : (n, 3) int, every reflection with d >= d_min except systematic absences
    intensity : (n,) float, |F|^2 normalised to mean 1
    """

    cell: tuple[float, ...]
    space_group: str
    d_min: float
    B: np.ndarray
    hkl: np.ndarray
    intensity: np.ndarray


def random_model(cell, space_group: str, n_atoms: int, rng: np.random.Generator) -> gemmi.Structure:
    """A structure of `n_atoms` atoms per asymmetric unit at random positions (B = 20 A^2)."""
    st = gemmi.Structure()
    st.cell = gemmi.UnitCell(*cell)
    st.spacegroup_hm = space_group
    chain = gemmi.Chain("A")
    for i, frac in enumerate(rng.random((n_atoms, 3))):
        residue = gemmi.Residue()
        residue.name = "UNK"
        residue.seqid = gemmi.SeqId(i + 1, " ")
        atom = gemmi.Atom()
        atom.element = gemmi.Element(ELEMENTS[i % len(ELEMENTS)])
        atom.name = atom.element.name
        atom.b_iso = 20.0
        atom.occ = 1.0
        atom.pos = st.cell.orthogonalize(gemmi.Fractional(*frac))
        residue.add_atom(atom)
        chain.add_residue(residue)
    model = gemmi.Model("1")
    model.add_chain(chain)
    st.add_model(model)
    st.setup_entities()
    return st


def structure_factor_grid(st: gemmi.Structure, d_min: float) -> gemmi.ReciprocalComplexGrid:
    """F(hkl) of the model with its symmetry, by FFT of the calculated density (l >= 0 half)."""
    dc = gemmi.DensityCalculatorX()
    dc.d_min = d_min
    dc.rate = 1.5
    dc.set_grid_cell_and_spacegroup(st)
    dc.put_model_density_on_grid(st[0])
    return gemmi.transform_map_to_f_phi(dc.grid, half_l=True)


def sphere_hkl(B: np.ndarray, d_min: float) -> np.ndarray:
    """All Miller indices (n, 3) with 0 < |s| <= 1/d_min."""
    # |h_i| = |row_i(B^-1) . s| <= |row_i(B^-1)| / d_min
    limits = np.ceil(np.linalg.norm(np.linalg.inv(B), axis=1) / d_min).astype(int)
    grids = np.meshgrid(*[np.arange(-n, n + 1) for n in limits], indexing="ij")
    hkl = np.stack([g.ravel() for g in grids], axis=1)
    s = np.linalg.norm(hkl @ B.T, axis=1)
    return hkl[(s > 0) & (s <= 1.0 / d_min)]


def lookup_intensity(grid: gemmi.ReciprocalComplexGrid, hkl: np.ndarray) -> np.ndarray:
    """|F|^2 at `hkl` from a half-l grid, using Friedel's law for l < 0."""
    arr = np.array(grid, copy=False)
    sign = np.where(hkl[:, 2] < 0, -1, 1)[:, None]
    h, k, l = (hkl * sign).T
    return np.abs(arr[h % grid.nu, k % grid.nv, l]).astype(np.float64) ** 2


def make_crystal(cell, space_group: str, d_min: float, seed: int, n_atoms: int = 1000) -> Crystal:
    """Generate a model and compute the intensities of every reflection to `d_min`."""
    rng = np.random.default_rng([seed, 7919])
    grid = structure_factor_grid(random_model(cell, space_group, n_atoms, rng), d_min)
    B = reciprocal_basis(cell)
    hkl = sphere_hkl(B, d_min)
    intensity = lookup_intensity(grid, hkl)
    present = intensity > 1e-6 * intensity.max()  # drop systematic absences
    hkl, intensity = hkl[present], intensity[present]
    return Crystal(tuple(cell), space_group, d_min, B, hkl, intensity / intensity.mean())


def write_truth_mtz(path, crystal: Crystal) -> None:
    """True merged intensities of the unique reflections (IMEAN, SIGIMEAN = 0) as MTZ."""
    sg = gemmi.SpaceGroup(crystal.space_group)
    asu = gemmi.ReciprocalAsu(sg)
    in_asu = np.array([asu.is_in(list(map(int, h))) for h in crystal.hkl])
    hkl, intensity = crystal.hkl[in_asu], crystal.intensity[in_asu]
    mtz = gemmi.Mtz(with_base=True)
    mtz.spacegroup = sg
    mtz.set_cell_for_all(gemmi.UnitCell(*crystal.cell))
    mtz.add_dataset("truth")
    mtz.add_column("IMEAN", "J")
    mtz.add_column("SIGIMEAN", "Q")
    data = np.column_stack([hkl, intensity, np.zeros(len(hkl))]).astype(np.float32)
    mtz.set_data(data)
    mtz.write_to_file(str(path))
