"""Quality statistics of merged intensities, overall and per resolution shell.

Completeness, multiplicity, mean I/sigma, CC1/2, CC* and Rsplit between two random halves of
the images, CCano, a suggested resolution cut-off and the Wilson B (:mod:`quality`), and (when
the true intensities are known) the correlation with the truth, also of the anomalous ΔF. A
merge whose halves disagree (low CC1/2) or whose images do not correlate with the merge of the
other half gets ``"suspect": {"reason": ...}``, so a trial that let wrong solutions through is
visibly bad.
"""

from __future__ import annotations

import numpy as np

from kernels.crystal.symmetry import CrystalSymmetry, unpack
from kernels.merging.quality import amplitude_difference, cc_star, suggested_d_min, wilson_b

SUSPECT_CC_HALF = 0.5  # a merge whose CC1/2 is lower is flagged suspect
SUSPECT_IMAGE_CC = 0.3  # ... or whose images correlate this little (median) with the other half


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Correlation coefficient, NaN with fewer than 3 pairs."""
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def rsplit(a: np.ndarray, b: np.ndarray) -> float:
    """Rsplit = sum |a - b| / (sqrt 2 * sum (a + b) / 2)."""
    denominator = np.sqrt(2.0) * 0.5 * np.sum(a + b)
    return float(np.sum(np.abs(a - b)) / denominator) if denominator > 0 else float("nan")


def shell_edges(d_possible: np.ndarray, n_shells: int) -> np.ndarray:
    """Shell boundaries in 1/d^3 with equal numbers of possible reflections, low to high resolution."""
    x = np.sort(d_possible**-3.0)
    return np.quantile(x, np.linspace(0, 1, n_shells + 1))


def truth_correlation(symmetry: CrystalSymmetry, keys, intensity, truth_hkl, truth_intensity):
    """CC with the truth, the merged set taken in the ambiguity setting that fits best.

    The overall setting of a merged data set is arbitrary where the space group has an indexing
    ambiguity, so each reindexing operator is tried and the best one reported with its index.
    """
    truth_keys = symmetry.canonical_keys(truth_hkl)
    order = np.argsort(truth_keys)
    truth_keys, truth_intensity = truth_keys[order], truth_intensity[order]
    best: tuple[float, int, tuple[np.ndarray, np.ndarray] | None] = (float("-inf"), 0, None)
    for k, op in enumerate(symmetry.ambiguity_rotations):
        mapped = symmetry.canonical_keys(unpack(keys) @ op)
        pos = np.clip(np.searchsorted(truth_keys, mapped), 0, len(truth_keys) - 1)
        match = truth_keys[pos] == mapped
        cc = pearson(intensity[match], truth_intensity[pos[match]])
        if np.isfinite(cc) and cc > best[0]:
            best = (cc, k, (match, truth_intensity[pos]))
    return best


TRUTH_B_GRID = np.arange(-60.0, 60.25, 0.25)  # A^2, relative B factors tried against the truth


def truth_cc_after_wilson_b(intensity, truth_intensity, d) -> tuple[float, float]:
    """(CC, B): the CC with the truth once the merge is put on the truth's Wilson B.

    A merge's overall B is a convention (here the median crystal's, relative B median 0); the
    truth has its own. Pooled over resolution, Pearson's CC sees that difference (a noise-free
    merge of crystals with B -5..25 A^2 scores 0.989), so the relative B maximising the CC is
    found on a 0.25 A^2 grid first, as SCALEIT scales two data sets before comparing them.
    """
    q = 0.5 / d**2
    corrected = intensity[None, :] * np.exp(np.outer(TRUTH_B_GRID, q))
    x = corrected - corrected.mean(axis=1, keepdims=True)
    y = truth_intensity - truth_intensity.mean()
    cc = (x @ y) / np.sqrt((x * x).sum(axis=1) * (y @ y))
    best = int(np.nanargmax(cc))
    return float(cc[best]), float(TRUTH_B_GRID[best])


def anomalous_truth(symmetry: CrystalSymmetry, keys, truth_anomalous):
    """True ΔF on the merge's keys (NaN where the truth has none); truth is (hkl, I+, I-)."""
    hkl, i_plus, i_minus = truth_anomalous
    truth_keys = symmetry.canonical_keys(hkl)
    order = np.argsort(truth_keys)
    pos = np.clip(np.searchsorted(truth_keys[order], keys), 0, len(order) - 1)
    found = truth_keys[order][pos] == keys
    delta = amplitude_difference(i_plus, i_minus)[order][pos]
    return np.where(found, delta, np.nan)


def anomalous_columns(merged, truth_delta) -> dict[str, np.ndarray]:
    """Per reflection: both half sets' anomalous differences, ours and the true ΔF (acentrics)."""
    friedel = merged.anomalous
    diff1, diff2 = friedel.half_differences()
    acentric = ~friedel.centric
    ours = amplitude_difference(friedel.i_plus, friedel.i_minus)
    columns = {"acentric": acentric, "half1": diff1, "half2": diff2, "ours": ours}
    if truth_delta is not None:
        columns["truth"] = truth_delta
    return columns


def anomalous_stats(ano: dict[str, np.ndarray], sel: np.ndarray) -> dict:
    """CCano between half sets, and the correlation of ΔF with the truth, over `sel`."""
    sel = sel & ano["acentric"]
    halves = sel & np.isfinite(ano["half1"]) & np.isfinite(ano["half2"])
    rec = {"cc_ano": pearson(ano["half1"][halves], ano["half2"][halves])}
    if "truth" in ano:
        m = sel & np.isfinite(ano["truth"]) & np.isfinite(ano["ours"])
        rec["cc_ano_truth"] = pearson(ano["ours"][m], ano["truth"][m])
    return rec


def suspect_reason(overall: dict, image_cc, min_cc_half: float, min_image_cc: float) -> str:
    """Why a merge should not be trusted ("" when nothing is wrong)."""
    reasons = []
    if not overall["cc_half"] >= min_cc_half:
        reasons.append(
            f"CC1/2 {overall['cc_half']:.3f} < {min_cc_half}: the two halves of the images do not "
            "agree, so most solutions are likely wrong (check the geometry and loosened gates)"
        )
    finite = image_cc[np.isfinite(image_cc)] if image_cc is not None else np.zeros(0)
    median_cc = float(np.median(finite)) if len(finite) else float("nan")
    if median_cc < min_image_cc:
        reasons.append(
            f"median image CC to the merge {median_cc:.3f} < {min_image_cc}: the images do not "
            "measure the same intensities"
        )
    return "; ".join(reasons)


def selection_stats(merged, sel: np.ndarray, n_possible: int, ano, truth_match) -> dict:
    """Statistics of the reflections in ``sel`` (a shell, or all) out of ``n_possible``."""
    both = sel & np.isfinite(merged.half1) & np.isfinite(merged.half2)
    with np.errstate(divide="ignore", invalid="ignore"):
        i_over_sigma = merged.intensity[sel] / merged.sigma[sel]
    rec = {
        "n_unique": int(sel.sum()),
        "n_possible": int(n_possible),
        "completeness": float(sel.sum() / n_possible) if n_possible else float("nan"),
        "multiplicity": float(merged.multiplicity[sel].mean()) if sel.any() else float("nan"),
        "mean_i_over_sigma": float(np.nanmean(i_over_sigma)) if sel.any() else float("nan"),
        "cc_half": pearson(merged.half1[both], merged.half2[both]),
        "rsplit": rsplit(merged.half1[both], merged.half2[both]),
    }
    rec["cc_star"] = cc_star(rec["cc_half"])
    if ano is not None:
        rec.update(anomalous_stats(ano, sel))
    if truth_match is not None:
        match, truth_values = truth_match
        m = match & sel
        rec["cc_truth"] = pearson(merged.intensity[m], truth_values[m])
    return rec


def merge_statistics(
    symmetry: CrystalSymmetry,
    merged,
    n_shells: int = 10,
    truth=None,
    truth_anomalous=None,
    suspect_cc_half: float = SUSPECT_CC_HALF,
    suspect_image_cc: float = SUSPECT_IMAGE_CC,
) -> dict:
    """Overall and per-shell statistics of a :class:`kernels.merging.Merged` result.

    truth : optional (hkl, intensity) of the true unique intensities; truth_anomalous :
    optional (hkl, I+, I-) of the true Friedel mates. The result has ``suspect``
    ({"reason": ...}) when the merge fails the run-level checks.
    """
    hkl = unpack(merged.keys)
    d = symmetry.resolution(hkl)
    d_min, d_max = float(d.min()), float(d.max())
    possible = symmetry.resolution(symmetry.unique_reflections(d_min, d_max * 1.0001))
    edges = shell_edges(possible, n_shells)

    def shell_of(dd):
        return np.clip(np.searchsorted(edges, dd**-3.0, side="right") - 1, 0, n_shells - 1)

    shell, shell_possible = shell_of(d), np.bincount(shell_of(possible), minlength=n_shells)
    cc_truth, truth_op, truth_match = (float("nan"), 0, None)
    if truth is not None:
        cc_truth, truth_op, truth_match = truth_correlation(
            symmetry, merged.keys, merged.intensity, *truth
        )

    ano = None
    if merged.anomalous is not None:
        truth_delta = (
            None
            if truth_anomalous is None
            else anomalous_truth(symmetry, merged.keys, truth_anomalous)
        )
        ano = anomalous_columns(merged, truth_delta)

    overall = selection_stats(merged, np.ones(len(d), dtype=bool), len(possible), ano, truth_match)
    overall.update(d_min=d_min, d_max=d_max, wilson_b=wilson_b(d, merged.intensity))
    if ano is not None:
        low_half = shell < n_shells // 2
        overall["low_resolution_half"] = anomalous_stats(ano, low_half)
    if truth is not None:
        overall["cc_truth"], overall["truth_reindex_op"] = (
            cc_truth,
            symmetry.ambiguity_rotations[truth_op].tolist(),
        )
        if truth_match is not None:
            match, truth_values = truth_match
            overall["cc_truth_wilson_b"], overall["truth_relative_b"] = truth_cc_after_wilson_b(
                merged.intensity[match], truth_values[match], d[match]
            )
    shells = []
    for i in range(n_shells):
        rec = selection_stats(merged, shell == i, shell_possible[i], ano, truth_match)
        rec["d_max"], rec["d_min"] = (
            float(edges[i] ** (-1 / 3)) if edges[i] > 0 else float("inf"),
            float(edges[i + 1] ** (-1 / 3)),
        )
        shells.append(rec)
    overall["suggested_d_min"] = suggested_d_min(
        [s["d_max"] for s in shells],
        [s["d_min"] for s in shells],
        [s["cc_half"] for s in shells],
        d_min,
    )
    return with_run_level_checks(
        {"overall": overall, "shells": shells}, merged, suspect_cc_half, suspect_image_cc
    )


def with_run_level_checks(
    result: dict, merged, suspect_cc_half: float, suspect_image_cc: float
) -> dict:
    """``result`` with the median image CC and, when the merge fails the checks, ``suspect``."""
    overall = result["overall"]
    image_cc = getattr(merged, "image_cc", None)
    if image_cc is not None and np.isfinite(image_cc).any():
        overall["median_image_cc"] = float(np.nanmedian(image_cc))
    reason = suspect_reason(overall, image_cc, suspect_cc_half, suspect_image_cc)
    if reason:
        result["suspect"] = {"reason": reason}
    return result


# what the results DB keeps of merge_stats.json beside the overall statistics (the dashboard shows them)
STORED_WITH_OVERALL = ("suspect", "error_model", "images")


def stored_overall(stats: dict) -> dict:
    """The overall statistics of a merge_stats.json as the results DB stores them: with the
    merge's ``suspect`` reason, fitted error model and number of images merged."""
    return {**stats.get("overall", {}), **{k: stats[k] for k in STORED_WITH_OVERALL if k in stats}}
