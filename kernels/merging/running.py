"""Run-so-far merging: quick-look statistics of a run while it is acquired, kept incrementally.

What is incremental: per unique reflection (canonical key of the point group) the running sums
of the partiality-corrected observations ``y = I / p`` weighted by ``w = p² / σ²`` (inverse
variance), their count, and the same sums for two half sets (images split by their chunk and
event). Adding an image adds its reflections to those sums; nothing merged before is read again.
The statistics (completeness, CC½, ⟨I/σ⟩, multiplicity) are those of the inverse-variance
weighted means.

What is not: the post-run merge (:func:`kernels.merging.algorithm.merge`) refines a scale,
B factor and partiality model per image against the merged intensities, resolves indexing
ambiguities, fits an error model and rejects outlier images — each a fit over all images at
once, redone from scratch when an image arrives. The run-so-far figures are therefore an
estimate of the final ones (exact for completeness and multiplicity up to the merge's
rejections); the run's merged MTZ always comes from the full merge of ``integrated.h5``.
An indexing ambiguity is not resolved here: in such space groups CC½ is underestimated.
"""

from __future__ import annotations

import numpy as np

from kernels.crystal.symmetry import N_KEYS, CrystalSymmetry, unpack
from kernels.merging.algorithm import MergeParams
from kernels.merging.statistics import pearson

_SUMS = ("w", "wy", "n", "w1", "wy1", "w2", "wy2")


def half_of(chunk: int, event: int) -> int:
    """The half set (1 or 2) of an image: fixed by its identity, not by when it arrived."""
    return 1 + (chunk * 7919 + event) % 2


class RunningMerge:
    """Running sums of a run's observations per unique reflection.

    Parameters
    ----------
    symmetry : CrystalSymmetry
        The crystal the run is processed with.
    params : MergeParams
        Its observation cuts (partiality, resolution) are the post-run merge's.
    """

    def __init__(self, symmetry: CrystalSymmetry, params: MergeParams = MergeParams()):
        self.symmetry, self.params = symmetry, params
        # key -> slot in the sums, a dense table (64 MiB) like KeyIndex's: O(1) per reflection
        self._slot_of = np.full(N_KEYS, -1, dtype=np.int32)
        self._keys = np.zeros(0, dtype=np.int64)  # by slot, in the order first seen
        self._sums = {name: np.zeros(0) for name in _SUMS}
        self.n_keys = 0
        self.images = 0
        self.observations = 0

    def add(self, chunk: int, event: int, hkl, intensity, sigma, partiality) -> None:
        """Add one integrated image's reflections to the sums."""
        hkl, intensity = np.asarray(hkl, dtype=np.int64).reshape(-1, 3), np.asarray(intensity)
        sigma, partiality = np.asarray(sigma), np.asarray(partiality)
        keep = (partiality >= self.params.min_partiality) & (sigma > 0) & np.isfinite(intensity)
        if self.params.d_min > 0 and len(hkl):
            keep &= self.symmetry.resolution(hkl) >= self.params.d_min
        self.images += 1
        if not keep.any():
            return
        hkl, p = hkl[keep], partiality[keep]
        y, w = intensity[keep] / p, (p / sigma[keep]) ** 2
        slot = self._slots(self.symmetry.canonical_keys(hkl))
        half = half_of(chunk, event)
        sums = self._sums
        for name, values in (("w", w), ("wy", w * y), ("n", np.ones(len(w)))):
            np.add.at(sums[name], slot, values)
        np.add.at(sums[f"w{half}"], slot, w)
        np.add.at(sums[f"wy{half}"], slot, w * y)
        self.observations += len(w)

    def _slots(self, keys: np.ndarray) -> np.ndarray:
        """Slots of ``keys`` in the sums, new keys getting the next ones (capacity doubles)."""
        slot = self._slot_of[keys]
        if (slot >= 0).all():
            return slot
        new = np.unique(keys[slot < 0])
        first, self.n_keys = self.n_keys, self.n_keys + len(new)
        if self.n_keys > len(self._keys):
            capacity = max(2 * len(self._keys), self.n_keys, 1024)
            self._keys = np.resize(self._keys, capacity)
            for name, values in self._sums.items():
                self._sums[name] = np.concatenate([values, np.zeros(capacity - len(values))])
        self._keys[first : self.n_keys] = new
        self._slot_of[new] = np.arange(first, self.n_keys, dtype=np.int32)
        return self._slot_of[keys]

    @property
    def sums(self) -> dict[str, np.ndarray]:
        """The running sums of the reflections seen, by slot."""
        return {name: values[: self.n_keys] for name, values in self._sums.items()}

    @property
    def keys(self) -> np.ndarray:
        """Packed canonical keys of the reflections seen, by slot."""
        return self._keys[: self.n_keys]

    def statistics(self) -> dict:
        """Images merged, observations, unique reflections, completeness, multiplicity,
        ⟨I/σ⟩ and CC½ of the run so far (NaN where there is nothing to measure)."""
        s = self.sums
        seen = s["w"] > 0
        stats = {"images_merged": self.images, "observations": self.observations}
        nan = float("nan")
        if not seen.any():
            return {
                **stats,
                **dict.fromkeys(("completeness", "multiplicity", "mean_i_over_sigma"), nan),
                **dict.fromkeys(("cc_half", "d_min"), nan),
                "n_unique": 0,
            }
        w, wy = s["w"][seen], s["wy"][seen]
        d = self.symmetry.resolution(unpack(self.keys[seen]))
        possible = self.symmetry.unique_reflections(float(d.min()), float(d.max()) * 1.0001)
        both = seen & (s["w1"] > 0) & (s["w2"] > 0)
        return {
            **stats,
            "n_unique": int(seen.sum()),
            "completeness": float(seen.sum() / len(possible)),
            "multiplicity": float(s["n"][seen].sum() / seen.sum()),
            "mean_i_over_sigma": float(np.mean(wy / np.sqrt(w))),
            "cc_half": pearson(s["wy1"][both] / s["w1"][both], s["wy2"][both] / s["w2"][both]),
            "d_min": float(d.min()),
        }
