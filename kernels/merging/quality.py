"""What the merged data are worth: CC*, a resolution cut-off from a CC½ fit, Wilson B, and the
anomalous signal (CCano between half sets, correlation of ΔF with the truth)."""

from __future__ import annotations

import logging

import gemmi
import numpy as np
from scipy.optimize import curve_fit

log = logging.getLogger(__name__)

CC_HALF_CUTOFF = 0.3  # where the fitted CC½ curve suggests cutting, as DIALS suggests
WILSON_D_MAX = 4.0  # A: the Wilson plot is linear only at higher resolution
PROTEIN_ATOMS = {"C": 63, "N": 17, "O": 19, "S": 1}  # per 100 atoms (the simulator's composition)


def cc_star(cc_half: float) -> float:
    """Karplus & Diederichs' CC* = sqrt(2 CC½ / (1 + CC½)): the CC of the merge with the truth."""
    if not np.isfinite(cc_half) or cc_half <= 0:
        return float("nan")
    return float(np.sqrt(2 * cc_half / (1 + cc_half)))


def cc_half_curve(s2, s0, r):
    """CC½ as a function of 1/d^2: (1 - tanh((s2 - s0) / r)) / 2."""
    return 0.5 * (1 - np.tanh((s2 - s0) / r))


def suggested_d_min(shell_d_max, shell_d_min, cc_half, data_d_min: float) -> float:
    """Resolution where a fitted CC½ curve crosses 0.3; the data's d_min if it never does.

    shell_d_max, shell_d_min, cc_half : per shell (low to high resolution).
    """
    d_max, d_min, cc = (np.asarray(v, dtype=float) for v in (shell_d_max, shell_d_min, cc_half))
    s2 = 0.5 * (np.where(np.isfinite(d_max), d_max**-2.0, 0.0) + d_min**-2.0)
    ok = np.isfinite(cc)
    if ok.sum() < 3:
        return float("nan")
    try:
        (s0, r), _ = curve_fit(cc_half_curve, s2[ok], cc[ok], p0=(s2[ok].max(), s2[ok].max() / 4))
    except (RuntimeError, ValueError) as exc:
        log.warning("CC1/2 curve fit failed (%s): no suggested resolution", exc)
        return float("nan")
    # (1 - tanh(x)) / 2 = c  <=>  x = artanh(1 - 2c)
    crossing = s0 + abs(r) * np.arctanh(1 - 2 * CC_HALF_CUTOFF)
    if crossing <= 0 or crossing >= data_d_min**-2.0:
        return float(data_d_min)
    return float(crossing**-0.5)


def protein_scattering(stol2: np.ndarray) -> np.ndarray:
    """Sum of f^2 per 100 protein atoms at (sin theta / lambda)^2 (IT92 form factors)."""
    total = np.zeros_like(stol2)
    for element, count in PROTEIN_ATOMS.items():
        it92 = gemmi.Element(element).it92
        total += count * np.array([it92.calculate_sf(float(x)) for x in stol2]) ** 2
    return total


def wilson_b(d: np.ndarray, intensity: np.ndarray, bins: int = 10) -> float:
    """Overall B (A^2) from the slope of ln(<I> / sum f^2) against (sin theta / lambda)^2."""
    sel = (d < WILSON_D_MAX) & np.isfinite(intensity)
    if sel.sum() < 10 * bins:
        return float("nan")
    stol2 = 0.25 / d[sel] ** 2
    edges = np.quantile(stol2, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, stol2, side="right") - 1, 0, bins - 1)
    x = np.bincount(which, stol2, minlength=bins) / np.bincount(which, minlength=bins)
    mean_i = np.bincount(which, intensity[sel], minlength=bins) / np.bincount(which, minlength=bins)
    ok = mean_i > 0
    if ok.sum() < 3:
        return float("nan")
    slope = np.polyfit(x[ok], np.log(mean_i[ok] / protein_scattering(x[ok])), 1)[0]
    return float(-slope / 2)


def amplitude_difference(i_plus: np.ndarray, i_minus: np.ndarray) -> np.ndarray:
    """ΔF = sqrt(I+) - sqrt(I-), negative intensities taken as zero."""
    return np.sqrt(np.maximum(i_plus, 0.0)) - np.sqrt(np.maximum(i_minus, 0.0))
