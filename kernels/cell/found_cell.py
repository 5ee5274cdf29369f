"""Each image's cell-free lattice given the cell determined from all images (``cell.json``), so
that geometry refinement holds one well-determined cell rather than each still's own.

A still's cell-free cell is found through the geometry it was indexed with, so its scale trades
off against the detector distance; the dominant cluster's cell, from many images, does not.
Each image's reduced basis is matched to the determined reduced cell over its near-reduced
alternatives (:mod:`kernels.cell.metric`), its indices carried into that setting, and its basis
replaced by the determined cell turned to the image's orientation (orthogonal Procrustes).
Images whose lattice is not the determined one (a minority crystal, a wrong lattice) are left
out of the refinement and counted.
"""

from __future__ import annotations

import numpy as np

from kernels.cell.metric import distance, metric_tensor, near_reduced_bases
from kernels.geomrefine.spots import IndexedSpots

SAME_LATTICE = 0.03  # relative G6 distance of one cluster (the clustering's radius)


def determined_reduced_metric(cell_report: dict) -> np.ndarray:
    """The reduced metric (3, 3) of ``cell.json``'s main cell: conventional = T reduced."""
    main = cell_report["main"]
    T = np.asarray(main["transform_from_reduced"], dtype=float)
    Ti = np.linalg.inv(T)
    return Ti @ metric_tensor(main["cell"]) @ Ti.T


def shortest_basis(basis: np.ndarray, cycles: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """An integer change T (det +1) and the basis T @ basis of short vectors: every pair
    reduced (Gauss), so the reduced cell is among its near-reduced alternatives. A cell-free
    basis is the triple that indexes the most spots, not the reduced one."""
    T, B = np.eye(3, dtype=int), np.array(basis, dtype=float)
    for _ in range(cycles):
        changed = False
        for i in range(3):
            for j in (j for j in range(3) if j != i):
                q = int(np.rint(B[j] @ B[i] / (B[i] @ B[i])))
                if q:
                    B[j], T[j], changed = B[j] - q * B[i], T[j] - q * T[i], True
        if not changed:
            break
    if np.linalg.det(B) < 0:  # the same hand as the given basis
        T, B = -T, -B
    return T, B


def basis_with_metric(basis: np.ndarray, G: np.ndarray) -> np.ndarray:
    """The direct basis (rows) with metric `G` nearest to `basis`: the same orientation."""
    L = np.linalg.cholesky(G)  # any basis of metric G; L Q has it too for orthogonal Q
    u, _, vt = np.linalg.svd(L.T @ basis)
    return L @ (u @ vt)


def with_found_cell(spots: IndexedSpots, cell_report: dict) -> tuple[IndexedSpots, int]:
    """`spots` with every image's A of the determined cell (indices in its setting), and the
    number of images left out because their lattice is another.

    Raises
    ------
    ValueError
        A ``cell.json`` without the main cell's transform (written by ``python -m kernels cell``).
    """
    if "transform_from_reduced" not in cell_report.get("main", {}):
        raise ValueError("the cell report has no main cell with transform_from_reduced")
    G = determined_reduced_metric(cell_report)
    A = spots.A.copy()
    hkl = spots.hkl.copy()
    keep_image = np.ones(len(A), dtype=bool)
    for i, Ai in enumerate(spots.A):
        short, basis = shortest_basis(np.linalg.inv(Ai))  # rows: direct vectors, h = basis s
        changes, alternatives = near_reduced_bases(basis @ basis.T)
        d, k = distance(alternatives, G)
        if d > SAME_LATTICE:
            keep_image[i] = False
            continue
        on = spots.image == i
        hkl[on] = hkl[on] @ (np.rint(changes[k]).astype(int) @ short).T
        A[i] = np.linalg.inv(basis_with_metric(changes[k] @ basis, G))
    found = IndexedSpots(spots.image, hkl, spots.panel, spots.fs, spots.ss, A, spots.wavelength)
    return found.select(keep_image[spots.image]), int((~keep_image).sum())
