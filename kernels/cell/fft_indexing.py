"""Cell-free indexing of a still from its spots' scattering vectors (a 1-D FFT basis search).

A direct-lattice vector t puts every reciprocal-lattice point s on an integer s . t, so the
spots' projections onto the direction of t are periodic with period 1/|t|. Projections onto a
hemisphere of directions are histogrammed and Fourier transformed (as DIALS's fft1d); the
strongest periods give candidate vectors, each refined by maximising sum cos(2 pi s . t). The
three non-coplanar candidates that index the most spots with the smallest cell form the basis,
refined by least squares on the indexed spots and Niggli-reduced (gemmi). With several lattices
per image, the spots of each found lattice are removed before the next is sought.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache

import gemmi
import numpy as np
from scipy.optimize import minimize

from kernels.cell.metric import cell_of_metric

RIDGE = 1e-3  # of the normal matrix's trace: weight of the current basis in its refinement


@dataclass(frozen=True)
class CellFreeParams:
    """Tunable parameters of cell-free indexing."""

    max_cell: float = 250.0  # A, longest direct-lattice vector sought
    min_cell: float = 8.0  # A, shortest
    directions: int = 5000  # on the hemisphere
    fft_spots: int = 200  # lowest-resolution spots searched (a coarse grid blurs the others)
    candidates: int = 18  # refined candidate vectors, in distinct directions
    basis_candidates: int = 14  # shortest refined candidates tried as bases
    index_tolerance: float = 0.15  # of a Miller index
    min_indexed: int = 10
    min_indexed_fraction: float = 0.5
    max_lattices: int = 1


class CellFreeError(Exception):
    """A still that gives no lattice; the message is the reason."""


@dataclass(frozen=True)
class Lattice:
    """One lattice found on a still.

    basis : (3, 3) direct vectors a, b, c as rows (A), right-handed, as refined.
    reduced_cell : Niggli-reduced (a, b, c, alpha, beta, gamma). indexed : (n,) bool over the
    image's spots. rms : rms deviation of indexed spots from integer indices (fraction of an
    index). fraction : indexed share of the spots that were left when this lattice was sought.
    """

    basis: np.ndarray
    reduced_cell: tuple[float, ...]
    indexed: np.ndarray
    rms: float
    fraction: float

    @property
    def n_indexed(self) -> int:
        return int(self.indexed.sum())


@lru_cache(maxsize=4)
def hemisphere(n: int) -> np.ndarray:
    """n nearly uniform unit vectors with z >= 0 (a Fibonacci lattice); t and -t are one."""
    i = np.arange(n) + 0.5
    z = 1.0 - i / n
    phi = np.pi * (1.0 + 5**0.5) * i
    r = np.sqrt(1.0 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def fft_candidates(s: np.ndarray, params: CellFreeParams) -> np.ndarray:
    """Candidate direct vectors (k, 3): the strongest period along each of the best directions."""
    u = hemisphere(params.directions).astype(np.float32)
    p = s.astype(np.float32) @ u.T  # (n, m)
    pmax = float(np.abs(p).max()) * 1.0001
    n_bins = 1 << int(np.ceil(np.log2(4.0 * pmax * params.max_cell + 2)))
    bins = np.minimum(((p + pmax) / (2 * pmax) * n_bins).astype(np.int64), n_bins - 1)
    flat = bins + np.arange(len(u))[None, :] * n_bins
    hist = np.bincount(flat.ravel(), minlength=len(u) * n_bins).reshape(len(u), n_bins)
    amplitude = np.abs(np.fft.rfft(hist, axis=1))
    k_min = int(np.ceil(params.min_cell * 2 * pmax))
    k_max = min(int(params.max_cell * 2 * pmax), amplitude.shape[1] - 1)
    band = amplitude[:, k_min : k_max + 1].copy()
    # only local maxima: the falling edge of the zero-frequency peak is no period
    band[:, 1:-1] *= (band[:, 1:-1] > band[:, :-2]) & (band[:, 1:-1] >= band[:, 2:])
    band[:, [0, -1]] = 0.0
    k = np.argmax(band, axis=1)
    strength = band[np.arange(len(u)), k]
    lengths = (k + k_min) / (2 * pmax)
    chosen: list[np.ndarray] = []
    for i in np.argsort(-strength):
        t = lengths[i] * u[i]
        if all(_distinct(t, c) for c in chosen):
            chosen.append(t)
        if len(chosen) == params.candidates:
            break
    return np.array(chosen)


def _distinct(t: np.ndarray, other: np.ndarray, min_angle: float = np.radians(3.0)) -> bool:
    """True unless t and other are (anti)parallel within `min_angle`: only one vector per
    direction, so that harmonics (2t, 3t) do not crowd out the other axes."""
    cosine = abs(t @ other) / (np.linalg.norm(t) * np.linalg.norm(other))
    return bool(cosine < np.cos(min_angle))


def refine_vector(s: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Local maximum of sum cos(2 pi s . t): the vector on whose planes the spots lie best."""

    def cost(x):
        phase = 2 * np.pi * (s @ x)
        return -np.cos(phase).sum(), 2 * np.pi * (np.sin(phase) @ s)

    return minimize(cost, t, jac=True, method="BFGS", options={"maxiter": 50}).x


def choose_basis(s: np.ndarray, vectors: np.ndarray, params: CellFreeParams) -> np.ndarray:
    """The non-coplanar triple indexing the most spots; among near-best, the smallest cell."""
    vectors = vectors[np.argsort(np.linalg.norm(vectors, axis=1))][: params.basis_candidates]
    triples = []
    for combo in itertools.combinations(range(len(vectors)), 3):
        basis = vectors[list(combo)]
        volume = abs(np.linalg.det(basis))
        if volume < 0.2 * np.prod(np.linalg.norm(basis, axis=1)):
            continue  # nearly coplanar
        x = s @ basis.T
        count = int(np.all(np.abs(x - np.rint(x)) < params.index_tolerance, axis=1).sum())
        triples.append((count, volume, basis))
    if not triples:
        raise CellFreeError("no three non-coplanar lattice vectors among the candidates")
    top = max(t[0] for t in triples)
    near = [t for t in triples if t[0] >= 0.9 * top]
    return min(near, key=lambda t: t[1])[2]


def refine_basis(s: np.ndarray, basis: np.ndarray, tolerance: float, cycles: int = 4):
    """Least-squares direct basis from the indexed spots (s . basis^T = hkl); basis, indexed.

    A still's spots lie near a curved sheet, so along the beam few spots constrain the basis;
    a ridge term towards the current basis keeps those directions where they are instead of
    letting a handful of spots collapse the cell.
    """
    indexed = np.zeros(len(s), dtype=bool)
    for _ in range(cycles):
        x = s @ basis.T
        hkl = np.rint(x)
        indexed = np.all(np.abs(x - hkl) < tolerance, axis=1)
        if indexed.sum() < 4:
            break
        normal = s[indexed].T @ s[indexed]
        ridge = RIDGE * np.trace(normal) * np.eye(3)
        rhs = s[indexed].T @ hkl[indexed] + ridge @ basis.T
        basis = np.linalg.solve(normal + ridge, rhs).T
    if np.linalg.det(basis) < 0:
        basis = -basis
    return basis, indexed


def niggli_cell(cell: tuple[float, ...]) -> tuple[float, ...]:
    """The Niggli-reduced primitive cell of a cell (gemmi's Gruber vector reduction)."""
    gv = gemmi.GruberVector(gemmi.UnitCell(*cell), "P")
    gv.niggli_reduce()
    return tuple(float(v) for v in gv.cell_parameters())


def find_lattice(s: np.ndarray, params: CellFreeParams) -> Lattice:
    """One lattice from scattering vectors s (n, 3), 1/A, or CellFreeError with the reason."""
    n = len(s)
    needed = max(params.min_indexed, int(np.ceil(params.min_indexed_fraction * n)))
    if n < needed:
        raise CellFreeError(f"{n} spots < {params.min_indexed} needed for cell-free indexing")
    low = s[np.argsort(np.linalg.norm(s, axis=1))[: params.fft_spots]]
    vectors = np.array([refine_vector(low, t) for t in fft_candidates(low, params)])
    # sum cos(2 pi s . t) also peaks at t = 0: a candidate that slid there is no lattice vector
    vectors = vectors[np.linalg.norm(vectors, axis=1) >= params.min_cell]
    basis = choose_basis(low, vectors, params)
    basis, _ = refine_basis(low, basis, params.index_tolerance)  # then extend in resolution
    basis, indexed = refine_basis(s, basis, params.index_tolerance)
    lengths = np.linalg.norm(basis, axis=1)
    if not abs(np.linalg.det(basis)) > 0.2 * np.prod(lengths) or lengths.min() < params.min_cell:
        raise CellFreeError("the refined basis collapsed (coplanar or too short vectors)")
    if indexed.sum() < needed:
        raise CellFreeError(f"best lattice indexes {int(indexed.sum())} of {n} spots (< {needed})")
    x = s[indexed] @ basis.T
    rms = float(np.sqrt(np.mean((x - np.rint(x)) ** 2)))
    cell = niggli_cell(cell_of_metric(basis @ basis.T))
    return Lattice(basis, cell, indexed, rms, float(indexed.mean()))


def index_cell_free(s: np.ndarray, params: CellFreeParams = CellFreeParams()) -> list[Lattice]:
    """Up to `params.max_lattices` lattices of one still; each one's spots are removed before
    the next is sought. Raises CellFreeError when not even one is found."""
    s = np.asarray(s, dtype=float)
    remaining = np.arange(len(s))
    lattices: list[Lattice] = []
    while len(lattices) < params.max_lattices:
        try:
            found = find_lattice(s[remaining], params)
        except CellFreeError:
            if not lattices:
                raise
            break
        indexed = np.zeros(len(s), dtype=bool)
        indexed[remaining[found.indexed]] = True
        lattices.append(
            Lattice(found.basis, found.reduced_cell, indexed, found.rms, found.fraction)
        )
        remaining = remaining[~found.indexed]
    return lattices
