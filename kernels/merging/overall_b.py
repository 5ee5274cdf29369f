"""The overall B a merge is reported on: that of its sharpest crystals.

Scaling fixes only the crystals' B factors relative to each other (``G exp(-B q)`` with the
median relative B 0, q = 1 / (2 d^2)), so the merged intensities carry the B of the median
crystal: high-resolution terms damped by a falloff that belongs to the typical, not the best
ordered, crystal. The overall B is a convention (SCALEIT and refinement fit their own), so the
merge here is put, once the scaling and every rejection are done, on the B of the
``b_reference_percentile`` percentile of the merged crystals (default the sharpest tenth;
50 is the median as before): ``I' = I exp(-c q)``, its sigmas likewise, ``B' = B - c`` per
image, with c that percentile. Per-shell statistics (CC½, CC*, ⟨I/σ⟩, Rsplit) do not change;
what is pooled over resolution (overall CC, Wilson B, differences between sets) does.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from kernels.crystal.symmetry import CrystalSymmetry, unpack

if TYPE_CHECKING:
    from kernels.merging.algorithm import Merged


def sharpest_b_shift(relative_b: np.ndarray, merged_images: np.ndarray, percentile: float) -> float:
    """c: the `percentile` percentile of the relative B of the images that were merged (0 when
    none or no B was refined)."""
    values = relative_b[merged_images]
    return float(np.percentile(values, percentile)) if len(values) else 0.0


def on_overall_b(merged: Merged, symmetry: CrystalSymmetry, shift: float) -> Merged:
    """`merged` with its intensities, sigmas (halves, I(+)/I(-), scaled observations too) and
    per-image B put on relative B `shift` (see the module docstring)."""
    if shift == 0.0:
        return merged
    key_factor = np.exp(-shift * 0.5 / symmetry.resolution(unpack(merged.keys)) ** 2)

    def on_keys(*arrays):
        return tuple(a * key_factor for a in arrays)

    changes: dict = dict(
        intensity=merged.intensity * key_factor,
        sigma=merged.sigma * key_factor,
        half1=merged.half1 * key_factor,
        half2=merged.half2 * key_factor,
    )
    if merged.half_sigma is not None:
        changes["half_sigma"] = on_keys(*merged.half_sigma)
    if merged.images is not None:
        changes["images"] = dataclasses.replace(merged.images, B=merged.images.B - shift)
    if merged.anomalous is not None:
        f = merged.anomalous
        changes["anomalous"] = dataclasses.replace(
            f,
            i_plus=f.i_plus * key_factor,
            sig_plus=f.sig_plus * key_factor,
            i_minus=f.i_minus * key_factor,
            sig_minus=f.sig_minus * key_factor,
            half_plus=on_keys(*f.half_plus),
            half_minus=on_keys(*f.half_minus),
        )
    if merged.scaled is not None:
        s = merged.scaled
        obs_factor = np.exp(-shift * 0.5 / symmetry.resolution(s.hkl) ** 2)
        changes["scaled"] = dataclasses.replace(
            s, intensity=s.intensity * obs_factor, sigma=s.sigma * obs_factor
        )
    return dataclasses.replace(merged, **changes)
