"""A generated protein-like crystal: its model, structure factors and true merged intensities.

Optionally with anomalous scatterers (``AnomalousSites``: a few heavy atoms with f\" at the
wavelength), whose imaginary scattering breaks Friedel's law: intensities are then computed per
reflection of the full sphere and the truth MTZ carries I(+) and I(-) beside IMEAN.

Optionally with a light state (``LightState``, for pump-probe data): a light-activated fraction
of a second conformation in which some atoms have moved; its intensities (``light_intensity``)
are on the same scale as the dark ones, so ``light - dark`` is the truth difference.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import gemmi
import numpy as np

from kernels.crystal.geometry import reciprocal_basis

ATOM_B = 20.0  # A^2, every atom's isotropic B
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
    light_intensity: np.ndarray | None = None  # the light state's, same scale (LightState)

    def light(self) -> Crystal:
        """This crystal in its light state (the truth of laser-on shots)."""
        if self.light_intensity is None:
            raise ValueError("this crystal was made without a light state")
        return dataclasses.replace(self, intensity=self.light_intensity, light_intensity=None)


@dataclass(frozen=True)
class LightState:
    """A light-activated `fraction` of a conformation with `moved_atoms` atoms shifted by `shift_a`."""

    moved_atoms: int = 0
    fraction: float = 0.3
    shift_a: float = 1.5


def laser_shots(n: int, laser_fraction: float, delays_ns, rng: np.random.Generator):
    """Per shot of a pump-probe run: laser on (`laser_fraction` of them) and the DAQ's tags,
    ``laser_on`` (1/0) and ``delay_ns`` (one of `delays_ns`; NaN when dark)."""
    laser = rng.random(n) < laser_fraction
    delay = np.where(laser, rng.choice(np.asarray(delays_ns, dtype=float), n), np.nan)
    return laser, {"laser_on": laser.astype(np.int64), "delay_ns": delay}


def light_structure(st: gemmi.Structure, light: LightState, rng: np.random.Generator):
    """A copy of `st` in which each of the first `moved_atoms` atoms keeps occupancy 1 - fraction
    at its place and gains a copy of occupancy `fraction` shifted `shift_a` in a random direction."""
    lit = st.clone()
    residues = lit[0][0]
    for i in range(min(light.moved_atoms, len(residues))):
        atom = residues[i][0]
        moved = atom.clone()
        atom.occ = 1.0 - light.fraction
        direction = rng.normal(size=3)
        shift = light.shift_a * direction / np.linalg.norm(direction)
        moved.pos = gemmi.Position(*(np.array(atom.pos.tolist()) + shift))
        moved.occ = light.fraction
        moved.altloc = "B"
        residues[i].add_atom(moved)
    return lit


@dataclass(frozen=True)
class AnomalousSites:
    """Heavy atoms added to the model at random positions, scattering with f\" (electrons)."""

    element: str = "Se"
    count: int = 0
    f_double_prime: float = 4.0


def add_sites(st: gemmi.Structure, sites: AnomalousSites, rng: np.random.Generator) -> np.ndarray:
    """Add the heavy atoms to the model's chain; returns their fractional positions (n, 3)."""
    frac = rng.random((sites.count, 3))
    chain = st[0][0]
    for i, f in enumerate(frac):
        residue = gemmi.Residue()
        residue.name = "HAT"
        residue.seqid = gemmi.SeqId(len(chain) + i + 1, " ")
        atom = gemmi.Atom()
        atom.element = gemmi.Element(sites.element)
        atom.name = atom.element.name.upper()
        atom.b_iso, atom.occ = ATOM_B, 1.0
        atom.pos = st.cell.orthogonalize(gemmi.Fractional(*f))
        residue.add_atom(atom)
        chain.add_residue(residue)
    return frac


def anomalous_part(hkl, frac, B, space_group: str, f_double_prime: float) -> np.ndarray:
    """i f\" sum_j exp(2 pi i h.x_j) exp(-B_atom s^2 / 4) over every symmetry copy of the sites."""
    ops = gemmi.SpaceGroup(space_group).operations()
    copies = np.array([op.apply_to_xyz(list(map(float, x))) for x in frac for op in ops])
    phases = np.exp(2j * np.pi * (hkl @ copies.T)).sum(axis=1)
    s2 = np.sum((hkl @ B.T) ** 2, axis=1)
    return 1j * f_double_prime * np.exp(-ATOM_B * s2 / 4.0) * phases


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
        atom.b_iso = ATOM_B
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


def lookup_f(grid: gemmi.ReciprocalComplexGrid, hkl: np.ndarray) -> np.ndarray:
    """Complex F at `hkl` from a half-l grid, using Friedel's law (F(-h) = F(h)*) for l < 0."""
    arr = np.array(grid, copy=False)
    sign = np.where(hkl[:, 2] < 0, -1, 1)[:, None]
    h, k, l = (hkl * sign).T
    f = arr[h % grid.nu, k % grid.nv, l].astype(np.complex128)
    return np.where(sign[:, 0] < 0, np.conj(f), f)


def make_crystal(
    cell,
    space_group: str,
    d_min: float,
    seed: int,
    n_atoms: int = 1000,
    anomalous: AnomalousSites = AnomalousSites(),
    light: LightState = LightState(),
) -> Crystal:
    """Generate a model and compute the intensities of every reflection to `d_min`
    (and of its light state when ``light.moved_atoms`` > 0)."""
    rng = np.random.default_rng([seed, 7919])
    st = random_model(cell, space_group, n_atoms, rng)
    frac = add_sites(st, anomalous, np.random.default_rng([seed, 104729]))
    B = reciprocal_basis(cell)
    hkl = sphere_hkl(B, d_min)
    f = lookup_f(structure_factor_grid(st, d_min), hkl)
    normal = np.abs(f) ** 2  # obeys Friedel's law, so absences are dropped in pairs
    present = normal > 1e-6 * normal.max()  # drop systematic absences
    extra = 0.0
    if anomalous.count:
        extra = anomalous_part(hkl, frac, B, space_group, anomalous.f_double_prime)
    intensity = np.abs(f + extra)[present] ** 2
    light_intensity = None
    if light.moved_atoms:
        lit = light_structure(st, light, np.random.default_rng([seed, 15485863]))
        f_light = lookup_f(structure_factor_grid(lit, d_min), hkl)
        light_intensity = np.abs(f_light + extra)[present] ** 2 / intensity.mean()
    return Crystal(
        tuple(cell),
        space_group,
        d_min,
        B,
        hkl[present],
        intensity / intensity.mean(),
        light_intensity,
    )


def friedel_mate_intensity(crystal: Crystal, hkl: np.ndarray) -> np.ndarray:
    """I(-h) of each reflection h of `hkl` (all in the crystal's full sphere)."""
    lookup = {tuple(h): i for h, i in zip(crystal.hkl.tolist(), crystal.intensity)}
    return np.array([lookup[(-h, -k, -l)] for h, k, l in hkl.tolist()])


def write_truth_mtz(path, crystal: Crystal) -> None:
    """True merged intensities of the unique reflections as MTZ: IMEAN (SIGIMEAN = 0), I(+), I(-)."""
    sg = gemmi.SpaceGroup(crystal.space_group)
    asu = gemmi.ReciprocalAsu(sg)
    in_asu = np.array([asu.is_in(list(map(int, h))) for h in crystal.hkl])
    hkl, i_plus = crystal.hkl[in_asu], crystal.intensity[in_asu]
    i_minus = friedel_mate_intensity(crystal, hkl)
    mtz = gemmi.Mtz(with_base=True)
    mtz.spacegroup = sg
    mtz.set_cell_for_all(gemmi.UnitCell(*crystal.cell))
    mtz.add_dataset("truth")
    for label, kind in (("IMEAN", "J"), ("SIGIMEAN", "Q"), ("I(+)", "K"), ("I(-)", "K")):
        mtz.add_column(label, kind)
    zero = np.zeros(len(hkl))
    imean = (i_plus + i_minus) / 2
    data = np.column_stack([hkl, imean, zero, i_plus, i_minus]).astype(np.float32)
    mtz.set_data(data)
    mtz.write_to_file(str(path))
