"""Reduced cells as metric tensors and a distance between lattices that is continuous across
Niggli boundaries.

Near a boundary of the Niggli domain a small change of the lattice can jump its reduced cell
far away in G6 (an axis swap, a sign flip of an angle's cosine, a+b replacing b). So the
distance from a lattice to a reference is the smallest G6 distance over all of the lattice's
nearly reduced bases (unimodular changes with entries -1, 0, 1 that lengthen the axes by at
most a few per cent): on either side of a boundary both alternatives are in that set, as in
the NCDist idea of measuring across the boundary's images. It is relative (scale-free).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def metric_tensor(cell) -> np.ndarray:
    """Metric tensor G (3, 3) of (a, b, c, alpha, beta, gamma), A^2."""
    a, b, c = cell[:3]
    ca, cb, cg = np.cos(np.radians(cell[3:6]))
    return np.array(
        [
            [a * a, a * b * cg, a * c * cb],
            [a * b * cg, b * b, b * c * ca],
            [a * c * cb, b * c * ca, c * c],
        ]
    )


def cell_of_metric(G: np.ndarray) -> tuple[float, ...]:
    """(a, b, c, alpha, beta, gamma) of a metric tensor."""
    a, b, c = np.sqrt(np.diag(G))
    angles = np.degrees(
        np.arccos(np.clip([G[1, 2] / (b * c), G[0, 2] / (a * c), G[0, 1] / (a * b)], -1, 1))
    )
    return (float(a), float(b), float(c), *(float(v) for v in angles))


def g6(G: np.ndarray) -> np.ndarray:
    """G6 vectors (..., 6): g11, g22, g33, 2 g23, 2 g13, 2 g12 of metric tensors (..., 3, 3)."""
    return np.stack(
        [
            G[..., 0, 0],
            G[..., 1, 1],
            G[..., 2, 2],
            2 * G[..., 1, 2],
            2 * G[..., 0, 2],
            2 * G[..., 0, 1],
        ],
        axis=-1,
    )


@lru_cache(maxsize=1)
def unimodular_small() -> np.ndarray:
    """All integer 3x3 matrices with entries in {-1, 0, 1} and determinant +1 (m, 3, 3)."""
    grid = np.array(np.meshgrid(*[[-1, 0, 1]] * 9, indexing="ij")).reshape(9, -1).T
    T = grid.reshape(-1, 3, 3)
    return T[np.rint(np.linalg.det(T)).astype(int) == 1]


def near_reduced_bases(G: np.ndarray, margin: float = 0.06) -> tuple[np.ndarray, np.ndarray]:
    """Changes of basis T (k, 3, 3) and metrics T G T^T (k, 3, 3) whose axes are at most
    `margin` (relative, squared lengths) longer than those of the reduced metric G."""
    T = unimodular_small()
    alt = T @ G @ np.swapaxes(T, 1, 2)
    d = np.diagonal(alt, axis1=1, axis2=2)
    keep = np.all(d <= np.sort(np.diag(G)).max() * (1 + margin), axis=1)
    keep &= d.sum(axis=1) <= np.trace(G) * (1 + margin)
    return T[keep], alt[keep]


def distance(alternatives: np.ndarray, reference: np.ndarray) -> tuple[float, int]:
    """Smallest relative G6 distance of a lattice (its near-reduced metrics) to a reference
    metric, and the index of the alternative that attains it."""
    diff = np.linalg.norm(g6(alternatives) - g6(reference), axis=1) / np.trace(reference)
    i = int(np.argmin(diff))
    return float(diff[i]), i
