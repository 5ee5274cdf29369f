"""The unit cell of an experiment from many images' reduced cells.

Cells are clustered with the boundary-continuous distance of :mod:`kernels.cell.metric`
(leader clustering, then every cell re-assigned to the nearest cluster median), the largest
cluster is the crystal, its median metric gives the Bravais lattice and conventional cell, and
every member's cell, expressed in that conventional setting, gives the spread and histograms.
Clusters holding at least `minority_fraction` of the cells are reported as other crystals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import gemmi
import numpy as np

from kernels.cell.bravais import BravaisSolution, Tolerances, determine_bravais, impose
from kernels.cell.metric import cell_of_metric, distance, metric_tensor, near_reduced_bases

log = logging.getLogger(__name__)


class CellDeterminationError(ValueError):
    """Too few or inconsistent cells to determine a unit cell; the message says which."""


@dataclass(frozen=True)
class DeterminationParams:
    """Thresholds of cell determination."""

    min_images: int = 10  # indexed images needed
    cluster_distance: float = 0.03  # relative G6 distance joining a cluster
    minority_fraction: float = 0.1  # a second cluster this large is reported as another cell
    tolerances: Tolerances = field(default_factory=Tolerances)


@dataclass(frozen=True)
class CellCluster:
    """One crystal form: its members, Bravais lattice and conventional cell with spread.

    cells : (k, 6) members' cells in the conventional setting (before constraints).
    """

    members: np.ndarray
    solution: BravaisSolution
    cells: np.ndarray

    @property
    def spread(self) -> tuple[float, ...]:
        return tuple(float(v) for v in self.cells.std(axis=0))

    def space_groups(self) -> list[str]:
        """Sohncke (chiral) space groups of the lattice, as macromolecules crystallise in."""
        return lattice_space_groups(self.solution.bravais.family, self.solution.bravais.centring)


@dataclass(frozen=True)
class CellResult:
    """The dominant crystal form and the minority ones (largest first)."""

    main: CellCluster
    others: list[CellCluster]
    n_cells: int
    unassigned: int


def lattice_space_groups(family: str, centring: str) -> list[str]:
    """Sohncke space groups (Hermann-Mauguin) of a lattice family and centring, from gemmi."""
    # an hP lattice holds the trigonal P groups (P 3 2 1, P 31 ...) beside the hexagonal ones
    systems = {"rhombohedral": ("trigonal",), "hexagonal": ("hexagonal", "trigonal")}
    names = []
    for sg in gemmi.spacegroup_table_itb():
        if not sg.is_sohncke() or sg.crystal_system_str() not in systems.get(family, (family,)):
            continue
        if (family, centring) == ("rhombohedral", "R"):
            ok = sg.ext == "H" and sg.hm.startswith("R")
        elif family in ("hexagonal", "trigonal") and centring == "P":
            ok = sg.hm.startswith("P")
        else:
            ok = sg.centring_type() == centring and sg.number == sg.number and _standard(sg)
        if ok and sg.hm not in names:
            names.append(sg.hm)
    return names


def _standard(sg: gemmi.SpaceGroup) -> bool:
    """The standard setting (b-unique monoclinic: qualifier b for P, b1 for C; C-face
    orthorhombic) of a table entry."""
    return sg.qualifier in ("", "b", "b1") and sg.ext != "R" and not sg.hall.startswith("-")


def cluster(metrics: list[np.ndarray], params: DeterminationParams):
    """Cluster labels (-1: none) and each cluster's median metric, largest cluster first."""
    alternatives = [near_reduced_bases(G)[1] for G in metrics]
    leaders: list[np.ndarray] = []
    for alt, G in zip(alternatives, metrics, strict=True):
        if not any(distance(alt, ref)[0] < params.cluster_distance for ref in leaders):
            leaders.append(G)
    for _ in range(2):  # re-assign to the nearest centre, then centre on the members' median
        labels = np.full(len(metrics), -1)
        aligned = [np.empty((0, 3, 3))] * len(metrics)
        for i, alt in enumerate(alternatives):
            scores = [distance(alt, ref) for ref in leaders]
            best = int(np.argmin([d for d, _ in scores]))
            if scores[best][0] < params.cluster_distance:
                labels[i], aligned[i] = best, alt[scores[best][1]]
        counts = np.bincount(labels[labels >= 0], minlength=len(leaders))
        keep = [k for k in np.argsort(-counts) if counts[k] > 0]
        leaders = [
            np.median([aligned[i] for i in np.flatnonzero(labels == k)], axis=0) for k in keep
        ]
    return labels, leaders, aligned


def determine_cell(
    reduced_cells, params: DeterminationParams = DeterminationParams()
) -> CellResult:
    """The dominant unit cell of many images' reduced cells (n, 6).

    Raises
    ------
    CellDeterminationError
        Fewer than `params.min_images` cells, or no cluster reaching that size.
    """
    cells = np.asarray(reduced_cells, dtype=float).reshape(-1, 6)
    if len(cells) < params.min_images:
        raise CellDeterminationError(
            f"only {len(cells)} images indexed cell-free (< {params.min_images} needed to "
            "determine a cell): process more hits or lower the indexing thresholds"
        )
    bad = ~np.all(np.isfinite(cells), axis=1) | np.any(cells <= 0, axis=1)
    if bad.any():
        raise CellDeterminationError(
            f"reduced cell {int(np.argmax(bad))} is not a cell: {cells[bad][0]}"
        )
    metrics = [metric_tensor(c) for c in cells]
    labels, centres, aligned = cluster(metrics, params)
    forms = []
    for k, centre in enumerate(centres):
        members = np.flatnonzero(labels == k)
        if k > 0 and len(members) < max(params.min_images, params.minority_fraction * len(cells)):
            continue
        solution = determine_bravais(centre, params.tolerances)
        T = solution.transform
        conv = np.array([cell_of_metric(T @ aligned[i] @ T.T) for i in members])
        centred = impose(solution.bravais.family, tuple(np.median(conv, axis=0)))
        forms.append(CellCluster(members, _with_cell(solution, centred), conv))
    main = forms[0]
    if len(main.members) < params.min_images:
        raise CellDeterminationError(
            f"the largest group of consistent cells has {len(main.members)} images "
            f"(< {params.min_images}); the {len(cells)} cells do not agree"
        )
    unassigned = len(cells) - sum(len(form.members) for form in forms)
    return CellResult(main, forms[1:], len(cells), unassigned)


def _with_cell(solution: BravaisSolution, cell: tuple[float, ...]) -> BravaisSolution:
    return BravaisSolution(solution.bravais, solution.transform, cell, solution.distortion)
