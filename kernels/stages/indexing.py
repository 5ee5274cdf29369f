"""Indexing of a still with a known unit cell.

Spots are mapped to reciprocal space (on the Ewald sphere). Differences between neighbouring
spots are short reciprocal-lattice vectors, so every spot triplet (i, j, k) whose two difference
vectors match a pair of lattice vectors of the target cell in length and in the third side of
the triangle fixes an orientation (a two-vector alignment). The orientations of all such
hypotheses are scored at once by how many spots they put on a lattice point; the best one is
refined by a linear fit of A = U B to its indexed spots and a polar decomposition back to a
rotation. Spurious spots only add hypotheses that score badly.

When that search finds nothing good enough, a second pass forms hypotheses from the
``fallback_spots`` *strongest* spots, with longer difference vectors and a looser length
tolerance: strong spots are the fully recorded ones, whose positions lie on the Ewald sphere
where the lattice point is (a weak partial spot of a small-domain crystal is off by its
excitation error), and few spots make few, long neighbour differences. Only failed images pay
for it. A cell that does not match the data indexes too few spots with any orientation, so the
image is refused; the reason says whether the spots' neighbour differences match the cell's
lattice-vector lengths at all (a search failure) or no better than a 6 % different cell would
(a cell mismatch).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from kernels.crystal.panel_image import ImageGeometry, image_pixel_to_s


@dataclass(frozen=True)
class IndexingParams:
    """Tunable indexing parameters (the trial's ``indexing`` section)."""

    max_difference: float = 0.05  # 1/A, longest spot difference vector used for hypotheses
    neighbours: int = 10  # nearest spots per spot that form triplets
    max_hypothesis_spots: int = 160  # lowest-resolution spots used to form triplets
    length_tolerance: float = 0.0025  # 1/A, difference-vector vs lattice-vector length
    lattice_tolerance: float = 0.003  # 1/A, distance of an indexed spot from its lattice point
    min_indexed: int = 12  # spots that must be indexed
    min_indexed_fraction: float = 0.4  # of the spots
    fallback_spots: int = 60  # strongest spots forming the second pass's hypotheses (0: none)
    fallback_max_difference: float = 0.08  # 1/A
    fallback_length_tolerance: float = 0.004  # 1/A


class IndexingError(Exception):
    """An image that cannot be indexed with the target cell; the message is the reason."""


@dataclass(frozen=True)
class IndexingSolution:
    """Orientation of one still and the spots it explains.

    U : (3, 3) rotation, A = U @ B. hkl : (n, 3) int Miller index of every spot. indexed : (n,)
    bool, spot within the lattice tolerance of its lattice point. residual : rms distance of the
    indexed spots from their lattice points (1/A).
    """

    U: np.ndarray
    hkl: np.ndarray
    indexed: np.ndarray
    residual: float

    @property
    def n_indexed(self) -> int:
        return int(self.indexed.sum())


def lattice_vectors(B: np.ndarray, max_length: float) -> np.ndarray:
    """Miller indices (m, 3) of all lattice vectors 0 < |B h| <= max_length (both signs)."""
    limits = np.ceil(max_length * np.linalg.norm(np.linalg.inv(B), axis=1)).astype(int)
    grid = np.stack(
        np.meshgrid(*[np.arange(-n, n + 1) for n in limits], indexing="ij"), -1
    ).reshape(-1, 3)
    length = np.linalg.norm(grid @ B.T, axis=1)
    keep = (length > 0) & (length <= max_length)
    return grid[keep][np.argsort(length[keep])]


def spot_triplets(
    s: np.ndarray, params: IndexingParams, order: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of difference vectors (d1, d2) from a spot to two of its neighbours, (t, 3) each,
    among the first ``max_hypothesis_spots`` spots of `order` (default: lowest resolution)."""
    if order is None:
        order = np.argsort(np.linalg.norm(s, axis=1))
    base = s[order[: params.max_hypothesis_spots]]
    k = min(params.neighbours + 1, len(base))
    from scipy.spatial import cKDTree  # on first use: a run's prepare checks trial params

    _, nbr = cKDTree(base).query(base, k=k, distance_upper_bound=params.max_difference)
    j, m = np.triu_indices(k - 1, 1)
    a, b = nbr[:, 1:][:, j], nbr[:, 1:][:, m]
    ok = (a < len(base)) & (b < len(base))
    centre = np.broadcast_to(np.arange(len(base))[:, None], a.shape)[ok]
    d1 = base[a[ok]] - base[centre]
    d2 = base[b[ok]] - base[centre]
    cosang = np.einsum("ij,ij->i", d1, d2) / (
        np.linalg.norm(d1, axis=1) * np.linalg.norm(d2, axis=1)
    )
    planar = np.abs(cosang) < 0.94  # angle between 20 and 160 degrees: a well-defined plane
    return d1[planar], d2[planar]


def align_two_vectors(model1, model2, obs1, obs2) -> np.ndarray:
    """Rotations (t, 3, 3) taking each model vector pair onto its observed pair (TRIAD method)."""

    def frame(v1, v2):
        e1 = v1 / np.linalg.norm(v1, axis=-1, keepdims=True)
        e3 = np.cross(v1, v2)
        e3 /= np.linalg.norm(e3, axis=-1, keepdims=True)
        return np.stack([e1, np.cross(e3, e1), e3], axis=-1)

    return frame(obs1, obs2) @ np.swapaxes(frame(model1, model2), -1, -2)


@dataclass(frozen=True)
class IndexingPlan:
    """Per-cell precomputation for :func:`index_still`.

    B : reciprocal basis of the target cell. vectors : lattice vectors B h (m, 3) short enough to
    match spot differences. first : mask of the vectors that may play the first vector of a pair,
    one per orbit of the lattice symmetry (the rest would only repeat equivalent orientations).
    primitive : (3, 3) integer, columns the Miller indices of a primitive reciprocal basis of a
    centred cell (None for P): spots are rounded to the centred lattice's points only.
    """

    params: IndexingParams
    B: np.ndarray
    vectors: np.ndarray
    first: np.ndarray
    fallback: IndexingPlan | None = None  # the second pass's plan
    primitive: np.ndarray | None = None


def centring_basis(centring_vectors) -> np.ndarray | None:
    """Columns: Miller indices of a primitive basis of the reciprocal lattice of a centred cell
    (the h with h . t integral for every centring translation t); None when primitive.

    centring_vectors : fractional translations, e.g. gemmi's ``cen_ops`` / ``gemmi.Op.DEN``.
    """
    t = np.array([v for v in np.asarray(centring_vectors, float) if np.any(v % 1 != 0)])
    if len(t) == 0:
        return None
    grid = np.stack(np.meshgrid(*[np.arange(-2, 3)] * 3, indexing="ij"), -1).reshape(-1, 3)
    phase = grid @ t.T
    allowed = grid[np.all(np.abs(phase - np.rint(phase)) < 1e-6, axis=1) & np.any(grid, axis=1)]
    allowed = allowed[np.argsort(np.abs(allowed).sum(axis=1), kind="stable")]
    points = len(t) + 1  # lattice points per cell: the reciprocal cell is that many times smaller
    for triple in itertools.combinations(allowed, 3):
        basis = np.array(triple).T
        if round(abs(np.linalg.det(basis))) == points:
            return basis if np.linalg.det(basis) > 0 else basis[:, ::-1]
    raise ValueError(f"no primitive reciprocal basis for centring {t.tolist()}")


def plan_indexing(
    B: np.ndarray,
    lattice_rotations: np.ndarray,
    params: IndexingParams = IndexingParams(),
    centring_vectors=(),
) -> IndexingPlan:
    """Precompute the lattice vectors of the target cell and their symmetry-unique subset, for
    the first search and (with ``fallback_spots``) for the second pass.

    centring_vectors : the cell's centring translations (fractional; none: primitive). A centred
    cell's reflections outside its lattice (h + k odd for C) are neither matched to spot
    differences nor rounded to: on a few spots they let wrong orientations score."""
    primitive = centring_basis(centring_vectors) if len(centring_vectors) else None
    fallback = None
    if params.fallback_spots > 0:
        wide = replace(
            params,
            max_difference=params.fallback_max_difference,
            length_tolerance=params.fallback_length_tolerance,
            max_hypothesis_spots=params.fallback_spots,
            fallback_spots=0,
        )
        fallback = plan_indexing(B, lattice_rotations, wide, centring_vectors)
    hkl = lattice_vectors(B, params.max_difference + params.length_tolerance)
    if primitive is not None:
        x = hkl @ np.linalg.inv(primitive).T
        hkl = hkl[np.all(np.abs(x - np.rint(x)) < 1e-6, axis=1)]
    index = {tuple(h): i for i, h in enumerate(hkl)}
    first = np.zeros(len(hkl), dtype=bool)
    seen = np.zeros(len(hkl), dtype=bool)
    for i, h in enumerate(hkl):
        if not seen[i]:
            first[i] = True
            seen[[index[tuple(m)] for m in h @ lattice_rotations if tuple(m) in index]] = True
    return IndexingPlan(params, B, hkl @ B.T, first, fallback, primitive)


def orientation_hypotheses(s: np.ndarray, plan: IndexingPlan, order=None) -> np.ndarray:
    """Candidate rotations U (h, 3, 3) from spot triplets matched to lattice vector pairs."""
    params = plan.params
    d1, d2 = spot_triplets(s, params, order)
    v = plan.vectors
    vlen = np.linalg.norm(v, axis=1)
    tol = params.length_tolerance
    first = np.flatnonzero(plan.first)
    t1, l1 = np.nonzero(np.abs(np.linalg.norm(d1, axis=1)[:, None] - vlen[first][None, :]) < tol)
    l1 = first[l1]
    # second vector: every lattice vector of the right length, then the third side must match too
    len2 = np.linalg.norm(d2, axis=1)
    pair, l2 = np.nonzero(np.abs(len2[t1][:, None] - vlen[None, :]) < tol)
    t, l1 = t1[pair], l1[pair]
    side = np.linalg.norm(d2[t] - d1[t], axis=1)
    ok = np.abs(side - np.linalg.norm(v[l2] - v[l1], axis=1)) < tol
    ok &= (
        np.linalg.norm(np.cross(v[l1], v[l2]), axis=1) > 1e-3 * vlen[l1] * vlen[l2]
    )  # not parallel
    t, l1, l2 = t[ok], l1[ok], l2[ok]
    return align_two_vectors(v[l1], v[l2], d1[t], d2[t])


def lattice_distance(s: np.ndarray, U: np.ndarray, B: np.ndarray, primitive=None):
    """Nearest Miller indices and the distance (1/A) of each spot from them, for orientations U.

    U may be (3, 3) or a stack (h, 3, 3); returns hkl (..., n, 3) and distance (..., n).
    primitive : see IndexingPlan; rounds to the centred lattice's points only.
    """
    basis = B if primitive is None else B @ primitive
    x = s @ U @ np.linalg.inv(basis).T  # = (U B)^-1 s, row-wise
    hkl = np.rint(x)
    distance = np.linalg.norm((x - hkl) @ basis.T, axis=-1)
    if primitive is not None:
        hkl = hkl @ primitive.T  # back to the conventional cell's indices
    return hkl.astype(np.int64), distance


def fit_orientation(s: np.ndarray, hkl: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Rotation U best mapping B h onto s in the least-squares sense (Kabsch)."""
    model = hkl @ B.T
    u, _, vt = np.linalg.svd(s.T @ model)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def best_hypothesis(
    s: np.ndarray,
    hypotheses: np.ndarray,
    plan: IndexingPlan,
    enough: float,
    batch,
    screen,
    shortlist,
) -> tuple[np.ndarray, int]:
    """The hypothesis putting most spots on lattice points and that count.

    Hypotheses are screened on the `screen` spots in batches; the `shortlist` best of each batch
    are scored on every spot; the search stops once a count reaches `enough`.
    """
    tol, B = plan.params.lattice_tolerance, plan.B
    best_U, best_count = hypotheses[0], -1  # replaced by the first batch (counts >= 0)
    for start in range(0, len(hypotheses), batch):
        U = hypotheses[start : start + batch]
        _, distance = lattice_distance(screen, U, B, plan.primitive)
        U = U[np.argsort(-(distance < tol).sum(axis=1))[:shortlist]]
        _, distance = lattice_distance(s, U, B, plan.primitive)
        counts = (distance < tol).sum(axis=1)
        i = int(np.argmax(counts))
        if counts[i] > best_count:
            best_U, best_count = U[i], int(counts[i])
        if best_count >= enough:
            break  # clearly right; skip the remaining hypotheses
    return best_U, best_count


def lengths_match_fraction(s: np.ndarray, plan: IndexingPlan, scale: float = 1.0) -> float:
    """Fraction of the spots' short nearest-neighbour differences whose length matches a lattice
    vector of the cell (scaled by `scale`).

    Only differences up to 2.5 times the shortest lattice vector count, and the tolerance is
    a third of the search's: there the cell's lengths are sparse, so a wrong cell matches by
    chance far less often than the right one matches.
    """
    lengths = np.sort(np.linalg.norm(plan.vectors, axis=1)) * scale
    if len(s) < 4 or len(lengths) < 2:
        return 0.0
    from scipy.spatial import cKDTree  # on first use, as in spot_triplets

    distance, _ = cKDTree(s).query(s, k=4)
    x = distance[:, 1:].ravel()
    x = x[x <= 2.5 * lengths[0] / scale]
    if len(x) == 0:
        return 0.0
    i = np.clip(np.searchsorted(lengths, x), 1, len(lengths) - 1)
    nearest = np.minimum(np.abs(lengths[i] - x), np.abs(lengths[i - 1] - x))
    return float(np.mean(nearest < plan.params.length_tolerance / 3))


CONTROL_SCALES = (0.90, 0.93, 0.96, 1.04, 1.07, 1.10)  # cells a few % off: chance matching
SEARCH_FAILURE_Z = 1.4  # the right cell matches > 2 controls' sigmas better, a wrong one < 1


def failure_reason(s: np.ndarray, plan: IndexingPlan, n_indexed: int, needed: int) -> str:
    """Why no orientation indexes enough spots: a search failure or a cell mismatch.

    The spots' neighbour distances are matched against the cell's lattice-vector lengths and
    against those of cells a few per cent larger and smaller (what chance gives): the right
    cell stands out from those controls, a wrong one does not.
    """
    target = lengths_match_fraction(s, plan)
    controls = np.array([lengths_match_fraction(s, plan, f) for f in CONTROL_SCALES])
    z = (target - controls.mean()) / max(float(controls.std()), 0.02)
    head = f"target cell indexes at most {n_indexed} of {len(s)} spots (< {needed})"
    matches = (
        f"{100 * target:.0f} % of the spot spacings match its lattice vectors "
        f"(cells a few % off: {100 * controls.mean():.0f} %)"
    )
    if z > SEARCH_FAILURE_Z:
        return (
            f"{head} although {matches}: indexing search failure "
            "(try indexing.fallback_spots or indexing.max_difference)"
        )
    return (
        f"{head}; only {matches}: the target cell or space group (crystal.*) probably does not "
        "match the crystal"
    )


def index_still(
    col,
    row,
    wavelength: float,
    geometry: ImageGeometry,
    plan: IndexingPlan,
    batch: int = 1024,
    screen_spots: int = 40,
    shortlist: int = 32,
    intensity=None,
) -> IndexingSolution:
    """Find the orientation of the known cell that puts the most spots on lattice points.

    Spots are image pixel positions (flat or multi-panel); see :func:`index_s` for the rest.
    """
    s = image_pixel_to_s(col, row, wavelength, geometry)
    return index_s(s, plan, batch, screen_spots, shortlist, intensity)


def index_s(
    s: np.ndarray,
    plan: IndexingPlan,
    batch: int = 1024,
    screen_spots: int = 40,
    shortlist: int = 32,
    intensity=None,
) -> IndexingSolution:
    """Index spots given as scattering vectors s (n, 3) on the Ewald sphere, from any detector.

    Hypotheses are screened on the `screen_spots` lowest-resolution spots in batches; the
    `shortlist` best of each batch are then scored on every spot. If that is not enough, the
    second pass forms hypotheses from the strongest spots (by `intensity`, when given).

    Raises
    ------
    IndexingError
        Too few spots, no hypotheses, or no orientation indexing enough spots (the reason tells
        a search failure from a cell mismatch).
    """
    params, B = plan.params, plan.B
    n = len(s)
    if n < params.min_indexed:
        raise IndexingError(
            f"{n} spots < {params.min_indexed} needed to index (indexing.min_indexed): a weak hit"
        )
    needed = max(params.min_indexed, int(np.ceil(params.min_indexed_fraction * n)))
    enough = max(needed, 0.8 * n)
    screen = s[np.argsort(np.linalg.norm(s, axis=1))[:screen_spots]]
    hypotheses = orientation_hypotheses(s, plan)
    U, count = hypotheses[0] if len(hypotheses) else np.eye(3), -1
    if len(hypotheses):
        U, count = best_hypothesis(s, hypotheses, plan, enough, batch, screen, shortlist)
    if count < needed and plan.fallback is not None:
        strongest = None if intensity is None else np.argsort(-np.asarray(intensity, float))
        more = orientation_hypotheses(s, plan.fallback, strongest)
        if len(more):
            U2, count2 = best_hypothesis(s, more, plan, enough, batch, screen, shortlist)
            if count2 > count:
                U, count, hypotheses = U2, count2, more
    if len(hypotheses) == 0:
        raise IndexingError(
            "no spot triplet matches the target cell's lattice vectors: check the cell "
            "(crystal.*) and the detector geometry"
        )
    for _ in range(3):  # refit on the indexed spots, which may then gain a few more
        hkl, distance = lattice_distance(s, U, B, plan.primitive)
        indexed = distance < params.lattice_tolerance
        if indexed.sum() < 3:
            break
        U = fit_orientation(s[indexed], hkl[indexed], B)
    hkl, distance = lattice_distance(s, U, B, plan.primitive)
    indexed = distance < params.lattice_tolerance
    if indexed.sum() < needed:
        raise IndexingError(failure_reason(s, plan, int(indexed.sum()), needed))
    residual = float(np.sqrt(np.mean(distance[indexed] ** 2)))
    return IndexingSolution(U, hkl, indexed, residual)
