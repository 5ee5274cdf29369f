"""The unit cell from many stills pooled, when no single still's spots give it.

A still with few spots on its lattice (10-25 of 14-47 on the real 5-HT2B CSPAD stills) often
finds the densest lattice plane (two short vectors) but rarely the third vector, so per-image
cells do not cluster. Pooled here instead:

1. Each still's candidate direct vectors (the 1-D FFT search of :mod:`fft_indexing`) give, pair
   by pair, Gauss-reduced 2-D cells (|a|, |b|, gamma); those indexing nearly as many spots as
   the still's best vote, and the 2-D cells found in the most stills are the lattice planes
   tried (as CrystFEL's cell_explorer histograms lengths and angles).
2. Each still holding that plane is turned into one crystal frame: a along x, b in the xy plane,
   their normal z; its spots on the plane's rows become (h a* + k b* + z n), so all stills' spots
   form one dense reciprocal lattice sampled across many layers.
3. The third vector t = u a + v b + w n is among the strongest peaks of a 3-D Fourier transform
   of the pooled (h mod N, k mod N, z) histogram. A plane alone does not say which of its bases
   (a, b or -a, -b; more for a rectangular or hexagonal plane) is a still's a, b: each still
   takes the setting in which t indexes most of its spots, the stills are re-pooled and t
   refined (maximising sum cos 2 pi s . t), twice (as a twin's ambiguity is resolved).
4. Candidate cells (plane x third vector) are ranked by the pooled spots they index; the best
   few are scored by indexing every still with the known-cell indexer (Bravais cell, centring
   included); the winner's per-image lattices are refined freely and clustered as usual
   (:func:`determine_cell`), which gives the result, its spread and the minority cells.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from kernels.cell.bravais import determine_bravais
from kernels.cell.determination import (
    CellDeterminationError,
    CellResult,
    DeterminationParams,
    determine_cell,
    lattice_space_groups,
)
from kernels.cell.fft_indexing import (
    CellFreeParams,
    fft_candidates,
    niggli_cell,
    refine_basis,
    refine_vector,
)
from kernels.cell.metric import cell_of_metric, distance, metric_tensor, near_reduced_bases
from kernels.crystal.symmetry import CrystalSymmetry
from kernels.stages.indexing import IndexingError, IndexingParams, index_s, plan_indexing

LATTICE_VECTORS = 1000  # most lattice vectors a candidate cell's indexing hypotheses use


@dataclass(frozen=True)
class PooledParams:
    """Tunable parameters of the pooled cell determination."""

    max_cell: float = 250.0  # A
    min_cell: float = 8.0  # A
    length_tolerance: float = 0.03  # relative, one 2-D cell across stills
    angle_tolerance: float = 3.0  # degrees
    index_tolerance: float = 0.15  # of a Miller index
    planes: int = 3  # recurring lattice planes tried
    plane_fraction: float = 0.7  # of a still's best 2-D cell's spots: its planes that vote
    third_vectors: int = 4  # third-vector peaks tried per plane
    scored: int = 3  # candidate cells indexed on every still
    enough: float = 0.9  # of the stills: a candidate indexing this many is taken at once
    grid: int = 96  # u, v steps of the third vector's in-plane part
    min_indexed: int = 8  # spots a still needs to count as indexed by a candidate cell


@dataclass(frozen=True)
class Plane:
    """One still's 2-D lattice: Gauss-reduced a, b (|a| <= |b|, obtuse) and its spots on it."""

    a: np.ndarray
    b: np.ndarray
    n_indexed: int

    @property
    def cell(self) -> tuple[float, float, float]:
        la, lb = float(np.linalg.norm(self.a)), float(np.linalg.norm(self.b))
        return la, lb, float(np.degrees(np.arccos(np.clip(self.a @ self.b / (la * lb), -1, 1))))


def gauss_reduced(a: np.ndarray, b: np.ndarray, cycles: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """The two shortest vectors of the 2-D lattice a, b span, |a| <= |b|, angle >= 90 deg."""
    a, b = np.array(a, dtype=float), np.array(b, dtype=float)
    for _ in range(cycles):
        if a @ a > b @ b:
            a, b = b, a
        q = np.rint(a @ b / (a @ a))
        if q == 0:
            break
        b = b - q * a
    return a, (-b if a @ b > 0 else b)


def image_planes(s: np.ndarray, params: PooledParams) -> list[Plane]:
    """The 2-D lattices two of a still's candidate vectors span (s: its spots, 1/A) that index
    nearly as many spots as the best (long spurious pairs match across stills by chance)."""
    if len(s) < params.min_indexed:
        return []
    search = CellFreeParams(max_cell=params.max_cell, min_cell=params.min_cell)
    vectors = [refine_vector(s, t) for t in fft_candidates(s, search)]
    vectors = [v for v in vectors if np.linalg.norm(v) >= params.min_cell]
    planes = []
    for v1, v2 in itertools.combinations(vectors, 2):
        sine = np.linalg.norm(np.cross(v1, v2)) / (np.linalg.norm(v1) * np.linalg.norm(v2))
        if sine < 0.34:  # nearly parallel (< 20 deg): no plane
            continue
        a, b = gauss_reduced(v1, v2)
        x = s @ np.array([a, b]).T
        count = int(np.all(np.abs(x - np.rint(x)) < params.index_tolerance, axis=1).sum())
        planes.append(Plane(a, b, count))
    top = max((p.n_indexed for p in planes), default=0)
    return [p for p in planes if p.n_indexed >= params.plane_fraction * top]


def _matches(cells: np.ndarray, cell, params: PooledParams) -> np.ndarray:
    """Which 2-D cells (k, 3) are `cell` within the length and angle tolerances."""
    lengths = np.abs(cells[:, :2] - np.asarray(cell[:2])) <= params.length_tolerance * cell[1]
    return np.all(lengths, axis=1) & (np.abs(cells[:, 2] - cell[2]) <= params.angle_tolerance)


def recurring_planes(planes: list[list[Plane]], params: PooledParams) -> list[tuple]:
    """The 2-D cells found in the most stills, most first: (|a|, |b|, gamma, stills)."""
    votes = [(i, p.cell) for i, image in enumerate(planes) for p in image]
    if not votes:
        return []
    image = np.array([i for i, _ in votes])
    cells = np.array([c for _, c in votes])
    left = np.ones(len(votes), dtype=bool)
    found: list[tuple] = []
    while left.any() and len(found) < params.planes:
        support = [len(set(image[left & _matches(cells, c, params)])) for c in cells]
        best = int(np.argmax(np.where(left, support, -1)))
        members = left & _matches(cells, cells[best], params)
        found.append((*np.median(cells[members], axis=0), support[best]))
        left &= ~_matches(cells, cells[best], params)
    return found


def canonical_spots(s: np.ndarray, plane: Plane, frame: np.ndarray, tolerance: float):
    """A still's spots on its plane's rows in the common crystal frame (rows: a, b, n of the
    pooled plane): s . a and s . b stay the still's indices, s . n its height above the plane."""
    normal = np.cross(plane.a, plane.b)
    x = s @ np.array([plane.a, plane.b, normal / np.linalg.norm(normal)]).T
    on = np.all(np.abs(x[:, :2] - np.rint(x[:, :2])) < tolerance, axis=1)
    return x[on] @ np.linalg.inv(frame).T


def plane_frame(cell) -> np.ndarray:
    """Direct vectors a (x), b (xy plane) and the unit normal n (z) of a 2-D cell, as rows."""
    la, lb, gamma = cell[0], cell[1], np.radians(cell[2])
    return np.array([[la, 0, 0], [lb * np.cos(gamma), lb * np.sin(gamma), 0], [0, 0, 1.0]])


def third_vectors(S: np.ndarray, frame: np.ndarray, params: PooledParams) -> list[np.ndarray]:
    """Out-of-plane lattice vectors t = u a + v b + w n of pooled spots S (crystal frame): the
    strongest peaks of the 3-D transform of their (h mod N, k mod N, z) histogram, refined."""
    n = params.grid
    hk = np.rint(S @ frame[:2].T).astype(int) % n
    z = S[:, 2]
    zmax = float(np.abs(z).max()) * 1.0001
    n_bins = 1 << int(np.ceil(np.log2(4.0 * zmax * params.max_cell + 2)))
    zbin = np.minimum(((z + zmax) / (2 * zmax) * n_bins).astype(int), n_bins - 1)
    histogram = np.zeros((n, n, n_bins))
    np.add.at(histogram, (hk[:, 0], hk[:, 1], zbin), 1.0)
    amplitude = np.abs(np.fft.rfftn(histogram))
    f_min = int(np.ceil(params.min_cell * 2 * zmax))
    f_max = min(int(params.max_cell * 2 * zmax), amplitude.shape[2] - 2)
    band = amplitude[:, :, f_min : f_max + 1]
    peak = (band[:, :, 1:-1] > band[:, :, :-2]) & (band[:, :, 1:-1] >= band[:, :, 2:])
    score = np.where(peak, band[:, :, 1:-1], 0.0)
    vectors: list[np.ndarray] = []
    for flat in np.argsort(-score, axis=None)[: 50 * params.third_vectors]:
        mu, mv, f = np.unravel_index(flat, score.shape)
        t = mu / n * frame[0] + mv / n * frame[1] + (f + f_min + 1) / (2 * zmax) * frame[2]
        t = refine_vector(S, t)
        if abs(t[2]) >= params.min_cell and all(np.linalg.norm(t - o) > 1.0 for o in vectors):
            vectors.append(t)
        if len(vectors) == params.third_vectors:
            break
    return vectors


def pooled_count(S: np.ndarray, basis: np.ndarray, tolerance: float) -> int:
    """Pooled spots within `tolerance` of integer indices in a basis (rows)."""
    x = S @ basis.T
    return int(np.all(np.abs(x - np.rint(x)) < tolerance, axis=1).sum())


def plane_settings(plane: Plane, plane_cell, params: PooledParams) -> list[Plane]:
    """The bases of a still's 2-D lattice with the pooled plane's cell (a, b and -a, -b at
    least; more when the plane is rectangular, square or hexagonal): which of them is the
    pooled frame's a, b is not known from the plane alone."""
    settings: list[Plane] = []
    for m in itertools.product(range(-2, 3), repeat=4):
        if abs(m[0] * m[3] - m[1] * m[2]) != 1:
            continue
        a, b = m[0] * plane.a + m[1] * plane.b, m[2] * plane.a + m[3] * plane.b
        other = Plane(a, b, plane.n_indexed)
        if _matches(np.array([other.cell]), plane_cell, params)[0]:
            settings.append(other)
    return settings


def still_settings(planes: list[list[Plane]], plane_cell, params: PooledParams):
    """Per still: the settings of its 2-D cell matching the plane that indexes the most spots
    (empty when the still holds no such plane)."""
    found = []
    for image in planes:
        same = [p for p in image if _matches(np.array([p.cell]), plane_cell, params)[0]]
        best = max(same, key=lambda p: p.n_indexed) if same else None
        found.append(plane_settings(best, plane_cell, params) if best else [])
    return found


def setting_count(s, plane: Plane, frame: np.ndarray, t: np.ndarray, tolerance: float) -> int:
    """A still's spots indexed by its plane with the pooled third vector t put in that setting."""
    normal = np.cross(plane.a, plane.b)
    axes = np.array([plane.a, plane.b, normal / np.linalg.norm(normal)])
    third = (t @ np.linalg.inv(frame)) @ axes
    return pooled_count(s, np.array([plane.a, plane.b, third]), tolerance)


def resolved_third_vector(spot_sets, settings, frame, t, params: PooledParams, rounds: int = 2):
    """Each still's setting chosen to fit the third vector t best, the stills re-pooled and t
    refined on them (as the ambiguity of a twin is resolved): t and its pooled spot count."""
    tolerance = params.index_tolerance
    for _ in range(rounds):
        pooled = []
        for s, options in zip(spot_sets, settings, strict=True):
            if options:
                best = max(options, key=lambda p: setting_count(s, p, frame, t, tolerance))
                pooled.append(canonical_spots(s, best, frame, tolerance))
        S = np.concatenate(pooled)
        t = refine_vector(S, t)
    return t, pooled_count(S, np.array([frame[0], frame[1], t]), tolerance)


def candidate_cells(spot_sets, params: PooledParams) -> list[tuple[int, tuple[float, ...]]]:
    """Reduced cells (pooled spots indexed, cell) from the recurring planes, best first."""
    planes = [image_planes(s, params) for s in spot_sets]
    candidates = []
    for *plane_cell, _ in recurring_planes(planes, params):
        frame = plane_frame(plane_cell)
        settings = still_settings(planes, plane_cell, params)
        first = [
            canonical_spots(s, o[0], frame, params.index_tolerance)
            for s, o in zip(spot_sets, settings, strict=True)
            if o
        ]
        for t in third_vectors(np.concatenate(first), frame, params):
            t, count = resolved_third_vector(spot_sets, settings, frame, t, params)
            basis = np.array([frame[0], frame[1], t])
            candidates.append((count, niggli_cell(cell_of_metric(basis @ basis.T))))
    candidates.sort(key=lambda c: -c[0])
    distinct: list[tuple[int, tuple[float, ...]]] = []
    for count, cell in candidates:
        alternatives = near_reduced_bases(metric_tensor(cell))[1]
        if all(distance(alternatives, metric_tensor(c))[0] > 0.03 for _, c in distinct):
            distinct.append((count, cell))
    return distinct


def cell_volume(cell) -> float:
    """Volume of a cell (A^3)."""
    return float(np.sqrt(np.linalg.det(metric_tensor(cell))))


def indexing_params(volume: float, min_indexed: int) -> IndexingParams:
    """Known-cell indexing of a candidate cell: spot differences to 0.06 1/A (0.08 in the
    second pass), shortened for a large cell so that at most ~1000 lattice vectors form the
    hypotheses (their number grows with the volume; a spurious 200 A cell took minutes)."""
    reach = (LATTICE_VECTORS / (4 / 3 * np.pi * volume)) ** (1 / 3)
    return IndexingParams(
        max_difference=min(0.06, reach),
        fallback_max_difference=min(0.08, 4 / 3 * reach),
        min_indexed=min_indexed,
    )


def reindexed_cells(spot_sets, reduced_cell, params: PooledParams) -> list[tuple[float, ...]]:
    """Each still indexed with a candidate cell (its Bravais lattice and centring), then its
    reduced basis refined freely on its spots: the stills' own reduced cells."""
    solution = determine_bravais(metric_tensor(reduced_cell))
    groups = lattice_space_groups(solution.bravais.family, solution.bravais.centring) or ["P 1"]
    symmetry = CrystalSymmetry.create(solution.cell, groups[0])
    indexing = indexing_params(cell_volume(reduced_cell), params.min_indexed)
    plan = plan_indexing(
        symmetry.B, symmetry.lattice_rotations, indexing, symmetry.centring_vectors
    )
    to_reduced = np.linalg.inv(solution.transform)
    cells = []
    for s in spot_sets:
        try:
            found = index_s(s, plan)
        except IndexingError:
            continue
        reduced = to_reduced @ np.linalg.inv(found.U @ symmetry.B)  # rows: direct vectors
        basis, indexed = refine_basis(s, reduced, params.index_tolerance)
        if indexed.sum() >= params.min_indexed:
            cells.append(niggli_cell(cell_of_metric(basis @ basis.T)))
    return cells


def determine_cell_pooled(
    spot_sets,
    params: PooledParams = PooledParams(),
    determination: DeterminationParams = DeterminationParams(),
) -> CellResult:
    """The unit cell of many stills' spots (scattering vectors, 1/A, one array per still),
    pooled as the module describes.

    Raises
    ------
    CellDeterminationError
        No lattice plane recurs across the stills, or no candidate cell indexes enough stills.
    """
    spot_sets = [np.asarray(s, dtype=float).reshape(-1, 3) for s in spot_sets]
    candidates = candidate_cells(spot_sets, params)
    if not candidates:
        raise CellDeterminationError(
            f"no lattice plane recurs across the {len(spot_sets)} stills: too few spots per still"
        )
    best: list[tuple[float, ...]] = []
    for _, cell in candidates[: params.scored]:
        cells = reindexed_cells(spot_sets, cell, params)
        best = max(best, cells, key=len)
        if len(best) >= params.enough * len(spot_sets):
            break  # lower-ranked candidates are not indexed on every still (time)
    if len(best) < determination.min_images:
        raise CellDeterminationError(
            f"the pooled candidate cells index at most {len(best)} of the {len(spot_sets)} "
            f"stills (< {determination.min_images} needed): too few spots on the lattice"
        )
    return determine_cell(best, determination)
