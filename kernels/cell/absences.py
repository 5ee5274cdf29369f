"""Space groups from systematic absences: which of a lattice's candidate groups merged
intensities agree with.

Each candidate says some reflections are absent (screw axes, glides: gemmi's
``GroupOps.is_systematically_absent``). Only reflections that one candidate calls absent and
another present tell them apart (the test set). A test reflection disagrees with a candidate
that calls it absent when I/sigma >= `cut`, and with one that calls it present when
I/sigma < `cut`. Candidates are ranked by their share of disagreements; groups with the same
absences (enantiomorphs such as P 41 21 2 / P 43 21 2, or P 4 2 2 / P 4 on the axes measured)
tie, and the more symmetric comes first.
"""

from __future__ import annotations

from dataclasses import dataclass

import gemmi
import numpy as np

from kernels.io.mtz import read_intensities

DEFAULT_CUT = 3.0  # I/sigma at and above which a reflection counts as present


class AbsenceError(Exception):
    """Intensities that cannot be scored against the candidates; the message says why."""


@dataclass(frozen=True)
class AbsenceScore:
    """One candidate space group against the test reflections.

    called_absent : test reflections the group says are absent. absent_i_over_sigma : their mean
    I/sigma (NaN when none; near 0 for the true group). disagreements : test reflections whose
    I/sigma contradicts the group. tested : size of the test set (the same for all candidates).
    """

    space_group: str
    called_absent: int
    absent_i_over_sigma: float
    disagreements: int
    tested: int

    @property
    def disagreement_fraction(self) -> float:
        return self.disagreements / self.tested if self.tested else 0.0

    def as_json(self) -> dict:
        mean = self.absent_i_over_sigma
        return {
            "space_group": self.space_group,
            "called_absent": self.called_absent,
            "absent_mean_i_over_sigma": None if np.isnan(mean) else round(mean, 2),
            "disagreements": self.disagreements,
            "tested": self.tested,
        }


def axis_settings(names: list[str]) -> list[str]:
    """The candidates with, for orthorhombic groups, their other axis settings (P 21 2 2,
    P 2 21 2 beside P 2 2 21): the conventional cell's a <= b <= c need not put the screw axis
    where the standard setting does. Other systems keep the standard setting only."""
    out: list[str] = []
    for name in names:
        sg = gemmi.SpaceGroup(name)
        same = [sg]
        if sg.crystal_system_str() == "orthorhombic":
            same += [
                other
                for other in gemmi.spacegroup_table()
                if other.number == sg.number and other.hm[0] == sg.hm[0] and other.ext == sg.ext
            ]
        out += [s.hm for s in same if s.hm not in out]
    return out


def absent_table(hkl: np.ndarray, names: list[str]) -> np.ndarray:
    """(groups, reflections) bool: which reflections each group says are absent."""
    rows = []
    for name in names:
        ops = gemmi.SpaceGroup(name).operations()
        rows.append([ops.is_systematically_absent([int(v) for v in h]) for h in hkl])
    return np.array(rows, dtype=bool).reshape(len(names), len(hkl))


def score_absences(
    hkl: np.ndarray, i_over_sigma: np.ndarray, candidates: list[str], cut: float = DEFAULT_CUT
) -> list[AbsenceScore]:
    """Rank candidate space groups (same lattice, same setting as hkl) by their absences.

    Parameters
    ----------
    hkl : (n, 3) Miller indices of measured reflections (merged, or integrated).
    i_over_sigma : (n,) I/sigma of each.
    candidates : Hermann-Mauguin names; see `axis_settings` for orthorhombic settings.
    cut : I/sigma from which a reflection is present.

    Returns
    -------
    list of AbsenceScore, best first (fewest disagreements, then the larger point group, then
    the candidates' order).
    """
    hkl = np.asarray(hkl, dtype=np.int64).reshape(-1, 3)
    z = np.asarray(i_over_sigma, dtype=float)
    if len(z) != len(hkl) or not np.all(np.isfinite(z)):
        raise AbsenceError(f"need one finite I/sigma per reflection ({len(z)} for {len(hkl)})")
    if not candidates:
        raise AbsenceError("no candidate space groups to score")
    absent = absent_table(hkl, candidates)
    informative = absent.any(axis=0) & ~absent.all(axis=0)  # all-absent: centring, no choice
    absent, strong = absent[:, informative], z[informative] >= cut
    scores = []
    for name, says_absent in zip(candidates, absent, strict=True):
        values = z[informative][says_absent]
        scores.append(
            AbsenceScore(
                name,
                int(says_absent.sum()),
                float(values.mean()) if len(values) else float("nan"),
                int(np.sum(says_absent == strong)),  # absent but strong, present but weak
                int(informative.sum()),
            )
        )
    order = {name: len(gemmi.SpaceGroup(name).operations().sym_ops) for name in candidates}
    return sorted(
        scores,
        key=lambda s: (s.disagreements, -order[s.space_group], candidates.index(s.space_group)),
    )


def absences_of_mtz(
    path, candidates: list[str], cell=None, column: str = "IMEAN", cut: float = DEFAULT_CUT
) -> list[AbsenceScore]:
    """`score_absences` on a merged MTZ (IMEAN / SIGIMEAN by default).

    cell : the determined conventional cell; the MTZ's must match it within 2 % and 2 deg, so
    that its Miller indices are in the candidates' setting (AbsenceError otherwise).
    """
    hkl, intensity, symmetry = read_intensities(path, column)
    sigma_hkl, sigma, _ = read_intensities(path, "SIG" + column)
    if not np.array_equal(hkl, sigma_hkl):
        raise AbsenceError(f"{path}: {column} and SIG{column} cover different reflections")
    if cell is not None:
        ours, theirs = np.asarray(cell, dtype=float), np.asarray(symmetry.cell, dtype=float)
        if np.any(np.abs(theirs[:3] / ours[:3] - 1) > 0.02) or np.any(
            np.abs(theirs[3:] - ours[3:]) > 2.0
        ):
            raise AbsenceError(
                f"{path}: its cell {tuple(round(v, 2) for v in theirs)} is not the determined "
                f"{tuple(round(v, 2) for v in ours)}; merge in the determined cell's setting"
            )
    positive = sigma > 0
    if not positive.any():
        raise AbsenceError(f"{path}: no reflection with SIG{column} > 0")
    return score_absences(
        hkl[positive], intensity[positive] / sigma[positive], axis_settings(candidates), cut
    )
