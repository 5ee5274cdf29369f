"""The Bravais lattice of a reduced cell: its conventional cell within tolerances.

Candidate conventional bases are triples of lattice vectors (integer combinations of the
reduced basis with coefficients -2..2). A triple is a cell of Bravais type X when its
determinant is X's number of lattice points per cell, the reduced lattice's points fall on X's
centring translations, and its metric meets X's conditions within the length and angle
tolerances. The most symmetric type that fits wins; among its fitting cells the least
distorted, then the standard choice (shortest axes, obtuse monoclinic angle).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from kernels.cell.metric import cell_of_metric

THIRD = 1.0 / 3.0
CENTRINGS: dict[str, list[tuple[float, float, float]]] = {
    "P": [(0, 0, 0)],
    "C": [(0, 0, 0), (0.5, 0.5, 0)],
    "I": [(0, 0, 0), (0.5, 0.5, 0.5)],
    "F": [(0, 0, 0), (0, 0.5, 0.5), (0.5, 0, 0.5), (0.5, 0.5, 0)],
    "R": [(0, 0, 0), (2 * THIRD, THIRD, THIRD), (THIRD, 2 * THIRD, 2 * THIRD)],
}


@dataclass(frozen=True)
class BravaisType:
    """A Bravais lattice: symbol (e.g. 'oC'), crystal family, centring, holohedry order."""

    symbol: str
    family: str
    centring: str
    order: int


BRAVAIS = [
    BravaisType("cP", "cubic", "P", 48),
    BravaisType("cI", "cubic", "I", 48),
    BravaisType("cF", "cubic", "F", 48),
    BravaisType("hP", "hexagonal", "P", 24),
    BravaisType("tP", "tetragonal", "P", 16),
    BravaisType("tI", "tetragonal", "I", 16),
    BravaisType("hR", "rhombohedral", "R", 12),
    BravaisType("oP", "orthorhombic", "P", 8),
    BravaisType("oC", "orthorhombic", "C", 8),
    BravaisType("oI", "orthorhombic", "I", 8),
    BravaisType("oF", "orthorhombic", "F", 8),
    BravaisType("mP", "monoclinic", "P", 4),
    BravaisType("mC", "monoclinic", "C", 4),
    BravaisType("aP", "triclinic", "P", 2),
]


@dataclass(frozen=True)
class Tolerances:
    """How far a measured cell may miss a Bravais type's conditions."""

    length: float = 0.015  # relative
    angle: float = 1.5  # degrees


@dataclass(frozen=True)
class BravaisSolution:
    """A reduced cell's Bravais lattice.

    transform : integer (3, 3), rows are the conventional axes in the reduced basis.
    cell : conventional cell with the type's constraints imposed. distortion : (relative
    length, degrees) by which the measured cell misses the constraints.
    """

    bravais: BravaisType
    transform: np.ndarray
    cell: tuple[float, ...]
    distortion: tuple[float, float]


def constraint_misfit(family: str, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relative length misfit and angle misfit (degrees) of cells (k, 6) to a family's metric."""
    a, b, c, al, be, ga = cells.T
    zero = np.zeros(len(cells))
    if family == "cubic":
        abc = cells[:, :3]
        right = np.abs(cells[:, 3:] - 90.0).max(axis=1)
        return np.ptp(abc, axis=1) / abc.mean(axis=1), right
    if family in ("hexagonal", "rhombohedral"):
        angle = np.maximum(np.maximum(abs(al - 90.0), abs(be - 90.0)), abs(ga - 120.0))
        return 2 * np.abs(a - b) / (a + b), angle
    if family == "tetragonal":
        return 2 * np.abs(a - b) / (a + b), np.abs(cells[:, 3:] - 90.0).max(axis=1)
    if family == "orthorhombic":
        return zero, np.abs(cells[:, 3:] - 90.0).max(axis=1)
    if family == "monoclinic":
        return zero, np.maximum(abs(al - 90.0), abs(ga - 90.0))
    return zero, zero


def impose(family: str, cell) -> tuple[float, ...]:
    """The cell with its family's constraints imposed (equal axes averaged, angles fixed)."""
    a, b, c, al, be, ga = cell
    if family == "cubic":
        m = (a + b + c) / 3
        return (m, m, m, 90.0, 90.0, 90.0)
    if family in ("hexagonal", "rhombohedral"):
        return ((a + b) / 2, (a + b) / 2, c, 90.0, 90.0, 120.0)
    if family == "tetragonal":
        return ((a + b) / 2, (a + b) / 2, c, 90.0, 90.0, 90.0)
    if family == "orthorhombic":
        return (a, b, c, 90.0, 90.0, 90.0)
    if family == "monoclinic":
        return (a, b, c, 90.0, be, 90.0)
    return tuple(cell)


@lru_cache(maxsize=1)
def candidate_transforms() -> dict[int, np.ndarray]:
    """Right-handed integer triples (coefficients -2..2) by determinant 1..4: {det: (k, 3, 3)}."""
    coeffs = np.array([v for v in itertools.product(range(-2, 3), repeat=3) if any(v)])
    i, j, k = np.meshgrid(*[np.arange(len(coeffs))] * 3, indexing="ij")
    T = np.stack([coeffs[i.ravel()], coeffs[j.ravel()], coeffs[k.ravel()]], axis=1)
    det = np.rint(np.linalg.det(T)).astype(int)
    return {n: T[det == n] for n in (1, 2, 3, 4)}


def centred_as(T: np.ndarray, centring: str) -> np.ndarray:
    """Mask of transforms whose reduced lattice points are exactly the centring's translations."""
    allowed = np.array(CENTRINGS[centring])
    rows = np.linalg.inv(T) % 1.0  # (k, 3, 3): reduced axes in conventional fractions
    rows = np.where(rows > 1 - 1e-6, 0.0, rows)
    close = np.abs(rows[:, :, None, :] - allowed[None, None]).max(axis=-1) < 1e-6
    return np.all(close.any(axis=-1), axis=1)


def cells_of_metrics(G: np.ndarray) -> np.ndarray:
    """Cell parameters (k, 6) of metric tensors (k, 3, 3)."""
    abc = np.sqrt(np.diagonal(G, axis1=1, axis2=2))
    cosines = np.stack(
        [
            G[:, 1, 2] / (abc[:, 1] * abc[:, 2]),
            G[:, 0, 2] / (abc[:, 0] * abc[:, 2]),
            G[:, 0, 1] / (abc[:, 0] * abc[:, 1]),
        ],
        axis=1,
    )
    return np.concatenate([abc, np.degrees(np.arccos(np.clip(cosines, -1, 1)))], axis=1)


@lru_cache(maxsize=16)
def centred_transforms(centring: str) -> np.ndarray:
    """The candidate transforms of a centring type."""
    T = candidate_transforms()[len(CENTRINGS[centring])]
    return T[centred_as(T, centring)]


def fits(G: np.ndarray, bravais: BravaisType, tol: Tolerances) -> list[BravaisSolution]:
    """Every conventional cell of type `bravais` the reduced metric G admits within `tol`."""
    T = centred_transforms(bravais.centring)
    cells = cells_of_metrics(T @ G @ np.swapaxes(T, 1, 2))
    length, angle = constraint_misfit(bravais.family, cells)
    ok = np.flatnonzero((length <= tol.length) & (angle <= tol.angle))
    return [
        BravaisSolution(
            bravais,
            T[i],
            impose(bravais.family, tuple(cells[i])),
            (float(length[i]), float(angle[i])),
        )
        for i in ok
    ]


def standard_order(solution: BravaisSolution) -> tuple:
    """Sort key picking the conventional choice: least distorted, shortest, obtuse beta, a<b<c."""
    a, b, c, _, beta, _ = solution.cell
    ordered = a <= b + 1e-6 and (solution.bravais.family != "orthorhombic" or b <= c + 1e-6)
    if solution.bravais.symbol == "oC":
        ordered = a <= b + 1e-6
    return (
        round(solution.distortion[1], 1),
        round(solution.distortion[0], 3),
        round(a + b + c, 1),
        beta < 90.0,
        not ordered,
    )


def determine_bravais(G: np.ndarray, tol: Tolerances = Tolerances()) -> BravaisSolution:
    """The most symmetric Bravais lattice fitting a reduced metric G, with its conventional cell."""
    for order in sorted({b.order for b in BRAVAIS if b.order > 2}, reverse=True):
        solutions = [s for b in BRAVAIS if b.order == order for s in fits(G, b, tol)]
        if solutions:
            return min(solutions, key=standard_order)
    return BravaisSolution(BRAVAIS[-1], np.eye(3, dtype=int), cell_of_metric(G), (0.0, 0.0))
