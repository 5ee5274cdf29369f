"""Anomalous data: I(+) and I(-) merged separately with the merge's scales and error model.

An observation belongs to the Friedel half of its reflection that its own point-group mates
(without inversion) fall in; "+" is gemmi's reciprocal asymmetric unit, as MTZ files mean it.
Centric reflections have no anomalous difference and carry the same value in both columns.
Anomalous statistics: CCano between the two half sets' differences, and the correlation of the
anomalous difference with the truth (``ano_truth_correlation``).
"""

from __future__ import annotations

from dataclasses import dataclass

import gemmi
import numpy as np

from kernels.crystal.symmetry import CrystalSymmetry, KeyIndex, pack, unpack
from kernels.merging.scaling import merged_intensities


@dataclass
class FriedelMerge:
    """I(+)/I(-) of the merged unique reflections (arrays aligned with ``Merged.keys``)."""

    i_plus: np.ndarray
    sig_plus: np.ndarray
    i_minus: np.ndarray
    sig_minus: np.ndarray
    centric: np.ndarray
    half_plus: tuple[np.ndarray, np.ndarray]
    half_minus: tuple[np.ndarray, np.ndarray]

    def half_differences(self) -> tuple[np.ndarray, np.ndarray]:
        """Acentric anomalous differences of the two half sets (NaN where unmeasured)."""
        diff = [p - m for p, m in zip(self.half_plus, self.half_minus)]
        return diff[0], diff[1]


def point_group_keys(symmetry: CrystalSymmetry, hkl: np.ndarray) -> np.ndarray:
    """Largest packed key among the proper point-group mates of each reflection (no Friedel)."""
    rots = symmetry.laue_rotations[: len(symmetry.laue_rotations) // 2]
    mates = np.einsum("ni,rij->rnj", np.asarray(hkl, dtype=np.int64), rots)
    return pack(mates.reshape(-1, 3)).reshape(len(rots), -1).max(axis=0)


def minus_half(symmetry: CrystalSymmetry, hkl: np.ndarray) -> np.ndarray:
    """1 where a reflection is in the Friedel half not holding its canonical key, else 0."""
    raw = KeyIndex(pack(hkl))  # once per distinct index, not per observation
    unique = unpack(raw.unique)
    minus = point_group_keys(symmetry, unique) < point_group_keys(symmetry, -unique)
    return minus.astype(np.int64)[raw.inverse]


def gemmi_plus(symmetry: CrystalSymmetry, hkl: np.ndarray) -> np.ndarray:
    """Whether gemmi maps each reflection into its asymmetric unit without inversion (I(+))."""
    asu, ops = gemmi.ReciprocalAsu(symmetry.group), symmetry.group.operations()
    return np.array([asu.to_asu([int(v) for v in h], ops)[1] % 2 == 1 for h in hkl], dtype=bool)


def merge_friedel_mates(symmetry, hkl, index, obs, fit, halves, keys, seen) -> FriedelMerge:
    """Merge each Friedel half separately; `hkl` are the observations' reindexed indices."""
    n_keys = len(keys)
    sign = minus_half(symmetry, hkl)
    index2 = 2 * index + sign
    prior = np.repeat(np.nan_to_num(fit.intensity), 2)

    def merged(mask):
        Ih, wsum, _ = merged_intensities(
            index2, fit.factor, obs.intensity, obs.sigma**2, prior, mask, 2 * n_keys, fit.error
        )
        with np.errstate(divide="ignore"):
            return Ih.reshape(n_keys, 2)[seen], 1.0 / np.sqrt(wsum.reshape(n_keys, 2)[seen])

    (i_pm, s_pm) = merged(fit.kept)
    halves_pm = [merged(fit.kept & (halves[obs.image] == h))[0] for h in (0, 1)]
    rep = unpack(keys[seen])
    centric = point_group_keys(symmetry, rep) == point_group_keys(symmetry, -rep)
    # our "+" holds the canonical key; gemmi's "+" is its asymmetric unit: swap where they differ
    swap = ~gemmi_plus(symmetry, rep) & ~centric
    order = np.where(swap[:, None], [1, 0], [0, 1])

    def columns(values):
        v = np.take_along_axis(values, order, axis=1)
        v[centric, 1] = v[centric, 0]
        return v[:, 0], v[:, 1]

    i_plus, i_minus = columns(i_pm)
    sig_plus, sig_minus = columns(s_pm)
    h_plus, h_minus = zip(*(columns(h) for h in halves_pm))
    return FriedelMerge(
        i_plus,
        sig_plus,
        i_minus,
        sig_minus,
        centric,
        (h_plus[0], h_plus[1]),
        (h_minus[0], h_minus[1]),
    )
