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
from functools import lru_cache

import gemmi
import numpy as np

from kernels.io.mtz import read_intensities

DEFAULT_CUT = 3.0  # I/sigma at and above which a reflection counts as present
MIN_MARGIN = 3  # test reflections by which the runner-up must disagree more than the best
MAX_DISAGREEMENT = 0.2  # share of the test set above which even the best group is no answer
MAX_CHANCE = 0.05  # of the margin's reflections all being weak by chance (weak data: no answer)

# Each lattice's symmorphic Sohncke group of its holohedry's rotations: no screw axis and no
# glide, so a merge in it keeps every reflection any candidate of the lattice may call absent,
# and (the lattice's full rotation symmetry) no still's indexing ambiguity splits the merge.
SYMMORPHIC = {
    "aP": "P 1",
    "mP": "P 1 2 1",
    "mC": "C 1 2 1",
    "oP": "P 2 2 2",
    "oC": "C 2 2 2",
    "oI": "I 2 2 2",
    "oF": "F 2 2 2",
    "tP": "P 4 2 2",
    "tI": "I 4 2 2",
    "hP": "P 6 2 2",
    "hR": "R 3 2",
    "cP": "P 4 3 2",
    "cI": "I 4 3 2",
    "cF": "F 4 3 2",
}


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


@dataclass(frozen=True)
class AbsenceChoice:
    """What the absences say: a space group (None: they cannot decide) and why."""

    space_group: str | None
    reason: str

    def as_json(self) -> dict:
        return {"space_group": self.space_group, "reason": self.reason}


def symmorphic_group(bravais: str) -> str:
    """The group to merge a lattice's images in before its absences are scored (SYMMORPHIC).

    Raises
    ------
    AbsenceError
        A symbol that is none of the 14 Bravais lattices.
    """
    if bravais not in SYMMORPHIC:
        raise AbsenceError(f"unknown Bravais lattice {bravais!r}: one of {', '.join(SYMMORPHIC)}")
    return SYMMORPHIC[bravais]


@lru_cache(maxsize=256)
def absence_pattern(name: str) -> bytes:
    """Which reflections of a small index box (|h|, |k|, |l| <= 6: every screw's period) the
    group calls absent; equal patterns mean groups that absences cannot tell apart."""
    box = np.arange(-6, 7)
    hkl = np.stack(np.meshgrid(box, box, box, indexing="ij"), -1).reshape(-1, 3)
    return gemmi.SpaceGroup(name).operations().systematic_absences(hkl.astype(np.int32)).tobytes()


def choose_space_group(scores: list[AbsenceScore], weak_fraction: float = 0.0) -> AbsenceChoice:
    """The best-ranked group if the absences decide it: it disagrees with at most
    MAX_DISAGREEMENT of the test set, the first group with other absences with at least
    MIN_MARGIN reflections more, and those reflections are not all weak by chance: a present
    reflection of the merge is weak (I/sigma < cut) with `weak_fraction` q, so q**margin must
    not exceed MAX_CHANCE (weak data make weak axial reflections no evidence of absence).
    Groups with its absences (enantiomorphs, P 4 2 2 / P 4) tie with it; the ranking's first,
    the most symmetric, is taken and the others named."""
    if not scores or not scores[0].tested:
        return AbsenceChoice(None, "no measured reflection tells the candidates apart")
    best, n = scores[0], scores[0].tested
    said = f"{best.space_group} disagrees with {best.disagreements}/{n} test reflections"
    if best.disagreement_fraction > MAX_DISAGREEMENT:
        return AbsenceChoice(None, f"even the best, {said} (> {MAX_DISAGREEMENT:.0%}): too weak")
    pattern = absence_pattern(best.space_group)
    same = [s.space_group for s in scores if absence_pattern(s.space_group) == pattern]
    rival = next((s for s in scores if s.space_group not in same), None)
    if rival is None:  # the measured reflections tell apart only groups the box does not
        return AbsenceChoice(None, f"{said}, and every candidate has its absences")
    margin = rival.disagreements - best.disagreements
    said += f", the next, {rival.space_group}, with {rival.disagreements} (margin {margin})"
    if margin < MIN_MARGIN:
        return AbsenceChoice(None, f"{said}: under {MIN_MARGIN}, too close to decide")
    chance = weak_fraction**margin
    if chance > MAX_CHANCE:
        return AbsenceChoice(
            None, f"{said}, but {weak_fraction:.0%} of the merge is weak: chance {chance:.2f}"
        )
    said += f", all weak by chance {chance:.3f}"
    if len(same) > 1:
        said += f"; same absences as {', '.join(same[1:])} (not told apart, the first taken)"
    return AbsenceChoice(best.space_group, said)


def axis_settings(names: list[str]) -> list[str]:
    """The candidates with, for orthorhombic groups, their other axis settings (P 21 2 2,
    P 2 21 2 beside P 2 2 21): the conventional cell's a <= b <= c need not put the screw axis
    where the standard setting does. Other systems keep the standard setting only."""
    out: list[str] = []
    for name in names:
        sg = gemmi.SpaceGroup(name)
        settings = {"": sg.hm}  # by axis permutation (qualifier); the first of each only:
        if sg.crystal_system_str() == "orthorhombic":  # later ones shift the origin (P 21212(a))
            for other in gemmi.spacegroup_table():
                if other.number == sg.number and other.hm[0] == sg.hm[0]:
                    settings.setdefault(other.qualifier, other.hm)
        out += [hm for hm in settings.values() if hm not in out]
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


def mtz_i_over_sigma(path, cell=None, column: str = "IMEAN") -> tuple[np.ndarray, np.ndarray]:
    """Miller indices and I/sigma of a merged MTZ's reflections with sigma > 0.

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
    return hkl[positive], intensity[positive] / sigma[positive]


def absences_of_mtz(
    path, candidates: list[str], cell=None, column: str = "IMEAN", cut: float = DEFAULT_CUT
) -> list[AbsenceScore]:
    """`score_absences` on a merged MTZ (IMEAN / SIGIMEAN by default; see `mtz_i_over_sigma`)."""
    hkl, z = mtz_i_over_sigma(path, cell, column)
    return score_absences(hkl, z, axis_settings(candidates), cut)
