"""``python -m kernels merge --results DIR... --out merged.mtz [--truth truth.mtz]
[--reference ref.mtz] [--params trial.json] [--set NAME=VALUE...] [--unmerged-cif FILE]``.

Writes the MTZ, ``merge_stats.json``, ``shells.png`` (per-shell plot) and the .hkl half sets in
the MTZ's folder.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from kernels.crystal.symmetry import CrystalSymmetry, SymmetryError, unpack
from kernels.io.atomic import write_json
from kernels.io.mtz import MtzError, read_intensities, write_merged_mtz
from kernels.io.reflections import INTEGRATED_FILE, read_integrated
from kernels.merging.algorithm import MergeError, MergeParams, Observations, merge
from kernels.merging.events import image_tags
from kernels.merging.exports import free_flags, write_half_sets, write_unmerged_cif
from kernels.merging.settings import load_reference
from kernels.merging.shells_plot import PNG_FILE, plot_shells
from kernels.merging.statistics import merge_statistics

INTEGRATION_WIDTHS = ("domain_size_a", "mosaicity_deg")  # integrated.h5's per-image profile


def load_observations(result_dirs, events=None) -> tuple[Observations, CrystalSymmetry, str]:
    """Every integrated reflection of the given run result directories (or integrated.h5 files).

    Per image, the tags its ``integrated.h5`` carries (from the run's files), and those of
    `events` (:func:`kernels.merging.events.read_event_table`, looked up by the result's run
    and the image's chunk and event), which win where both name a tag; NaN where a result has
    none of a tag.

    Raises
    ------
    MergeError
        No directories, a directory without results, results of different trials or crystals,
        or no reflection at all.
    """
    if not result_dirs:
        raise MergeError("no result directories given")
    parts: list[tuple[dict, dict]] = []
    tags: list[dict[str, np.ndarray]] = []
    labels: list[tuple] = []  # (path, trial, space group, cell) of each result
    for d in result_dirs:
        path = Path(d) / INTEGRATED_FILE if Path(d).is_dir() else Path(d)
        if not path.exists():
            raise MergeError(f"{d}: no {INTEGRATED_FILE} (was the run processed?)")
        attrs, images, refl = read_integrated(path)
        labels.append(
            (
                str(path),
                attrs.get("trial"),
                attrs.get("space_group"),
                tuple(np.round(np.asarray(attrs.get("cell"), dtype=np.float64), 3)),
            )
        )
        parts.append((images, refl))
        tags.append(dict(images["tags"]))
        if events is not None:
            run = str(attrs.get("run"))
            tags[-1].update(image_tags(events, run, images["chunk"], images["event"]))
    trials = sorted({label[1] for label in labels})
    if len(trials) > 1:
        raise MergeError(
            f"results of different trials cannot be merged together: {trials} "
            f"({', '.join(f'{p}={t}' for p, t, *_ in labels)})"
        )
    crystals = sorted({label[2:] for label in labels})
    if len(crystals) > 1:
        raise MergeError(
            f"results were processed with different crystals (space group, cell): {crystals}"
        )
    offset = 0
    columns: dict[str, list[np.ndarray]] = {
        k: [] for k in ("image", "hkl", "intensity", "sigma", "partiality")
    }
    for images, refl in parts:
        columns["image"].append(refl["image"].astype(np.int64) + offset)
        for k in ("hkl", "intensity", "sigma", "partiality"):
            columns[k].append(refl[k])
        offset += len(images["event"])
    n = sum(len(c) for c in columns["intensity"])
    if n == 0:
        raise MergeError(f"no integrated reflections in {', '.join(map(str, result_dirs))}")
    image, hkl, intensity, sigma, partiality = (
        np.concatenate(columns[k]) for k in ("image", "hkl", "intensity", "sigma", "partiality")
    )
    wavelength = np.concatenate([images["wavelength"] for images, _ in parts])
    widths = np.concatenate([integration_widths(images) for images, _ in parts])
    image_tag_columns = {
        name: np.concatenate(
            [t.get(name, np.full(len(im["event"]), np.nan)) for t, (im, _) in zip(tags, parts)]
        )
        for name in sorted({name for t in tags for name in t})
    }
    obs = Observations(
        image, hkl, intensity, sigma, partiality, offset, wavelength, image_tag_columns, widths
    )
    space_group, cell = crystals[0]
    try:
        symmetry = CrystalSymmetry.create(cell, space_group)
    except SymmetryError as exc:
        raise MergeError(f"{labels[0][0]}: {exc}") from None
    return obs, symmetry, trials[0]


def integration_widths(images: dict) -> np.ndarray:
    """Per image (n, 2) the domain size (A) and mosaicity (deg) its partiality was estimated
    with; NaN where the results do not say (written before they did) or the value is unusable."""
    n = len(images["event"])
    columns = [np.asarray(images.get(k, np.full(n, np.nan)), float) for k in INTEGRATION_WIDTHS]
    domain, mosaic = columns
    return np.stack(
        [np.where(domain > 0, domain, np.nan), np.where(mosaic >= 0, mosaic, np.nan)], axis=1
    )


def clean(value):
    """JSON-safe copy (NaN -> None)."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_truth(truth_mtz, symmetry: CrystalSymmetry):
    """(hkl, IMEAN) of a truth MTZ, and (hkl, I+, I-) when it has them; refused if another crystal."""
    truth_hkl, truth_i, truth_symmetry = read_intensities(truth_mtz)
    if truth_symmetry.group.point_group_hm() != symmetry.group.point_group_hm():
        raise MergeError(
            f"truth {truth_mtz} is in {truth_symmetry.space_group}, results in {symmetry.space_group}"
        )
    try:
        plus = read_intensities(truth_mtz, "I(+)")
        minus = read_intensities(truth_mtz, "I(-)")
    except MtzError:
        return (truth_hkl, truth_i), None
    return (truth_hkl, truth_i), (plus[0], plus[1], minus[1])


def write_outputs(out_mtz: Path, symmetry: CrystalSymmetry, merged, params, unmerged_cif=None):
    """The MTZ (IMEAN, anomalous columns, FreeR_flag), the .hkl half sets and the unmerged mmCIF."""
    friedel = merged.anomalous
    anomalous = (
        None
        if friedel is None
        else (friedel.i_plus, friedel.sig_plus, friedel.i_minus, friedel.sig_minus)
    )
    write_merged_mtz(
        out_mtz,
        symmetry,
        unpack(merged.keys),
        merged.intensity,
        merged.sigma,
        merged.multiplicity,
        anomalous,
        free_flags(merged.keys, params.free_fraction),
    )
    outputs: dict[str, object] = {"mtz": str(out_mtz)}
    half1, half2 = write_half_sets(out_mtz.with_suffix(""), symmetry, merged)
    outputs["half_sets"] = [str(half1), str(half2)]
    if unmerged_cif is not None:
        outputs["unmerged_cif"] = str(write_unmerged_cif(unmerged_cif, symmetry, merged.scaled))
    return outputs


def model_summary(merged) -> dict:
    """The fitted error model and the spread of the per-image model, for merge_stats.json."""
    images = merged.images
    summary = {
        "error_model": {
            "a": merged.error_model.a,
            "b": merged.error_model.b,
            "normal_probability_slope": merged.normal_probability_slope,
        },
        "rejected": merged.rejected_images,
        "merged_observations": 0 if merged.scaled is None else len(merged.scaled.intensity),
    }
    if images is not None:
        summary["images_model"] = {
            "relative_b_sd": float(np.std(images.B)),
            "domain_size_factor_median": float(np.median(images.domain_size_factor())),
            "mosaicity_factor_median": float(np.median(images.mosaicity_factor())),
        }
    return summary


def merge_results(
    result_dirs,
    out_mtz,
    truth_mtz=None,
    params: MergeParams = MergeParams(),
    reference_mtz=None,
    unmerged_cif=None,
) -> dict:
    """Merge runs' integrated reflections; write the MTZ, ``merge_stats.json`` and the per-shell
    plot ``shells.png`` beside it."""
    started = time.perf_counter()
    obs, symmetry, trial = load_observations(result_dirs)
    truth, truth_anomalous = (None, None) if truth_mtz is None else read_truth(truth_mtz, symmetry)
    reference = None if reference_mtz is None else load_reference(reference_mtz, symmetry)
    merged = merge(obs, symmetry, params, reference)
    out_mtz = Path(out_mtz)
    out_mtz.parent.mkdir(parents=True, exist_ok=True)
    outputs = write_outputs(out_mtz, symmetry, merged, params, unmerged_cif)
    stats = merge_statistics(symmetry, merged, params.shells, truth, truth_anomalous)
    stats.update(model_summary(merged))
    stats.update(
        trial=trial,
        space_group=symmetry.space_group,
        cell=list(symmetry.cell),
        results=[str(d) for d in result_dirs],
        images=int(obs.n_images),
        observations=int(len(obs)),
        rejected_observations=merged.n_rejected,
        reindexed_images=int((merged.reindex != 0).sum()),
        seconds=time.perf_counter() - started,
        reference=None if reference_mtz is None else str(reference_mtz),
        **outputs,
    )
    write_json(out_mtz.with_name("merge_stats.json"), clean(stats))
    title = f"trial {trial}: {len(result_dirs)} result(s), {obs.n_images} images merged"
    plot_shells(clean(stats), out_mtz.with_name(PNG_FILE), title=title)
    return stats
