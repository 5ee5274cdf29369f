"""``python -m kernels merge --results DIR... --out merged.mtz [--truth truth.mtz]``.

Writes the MTZ, ``merge_stats.json`` and ``shells.png`` (per-shell plot) in the MTZ's folder.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from kernels.crystal.symmetry import CrystalSymmetry, SymmetryError, unpack
from kernels.io.atomic import write_json
from kernels.io.mtz import read_intensities, write_merged_mtz
from kernels.io.reflections import INTEGRATED_FILE, read_integrated
from kernels.merging.algorithm import MergeError, MergeParams, Observations, merge
from kernels.merging.shells_plot import PNG_FILE, plot_shells
from kernels.merging.statistics import merge_statistics


def load_observations(result_dirs) -> tuple[Observations, CrystalSymmetry, str]:
    """Every integrated reflection of the given run result directories (or integrated.h5 files).

    Raises
    ------
    MergeError
        No directories, a directory without results, results of different trials or crystals,
        or no reflection at all.
    """
    if not result_dirs:
        raise MergeError("no result directories given")
    parts: list[tuple[dict, dict]] = []
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
    obs = Observations(image, hkl, intensity, sigma, partiality, n_images=offset)
    space_group, cell = crystals[0]
    try:
        symmetry = CrystalSymmetry.create(cell, space_group)
    except SymmetryError as exc:
        raise MergeError(f"{labels[0][0]}: {exc}") from None
    return obs, symmetry, trials[0]


def clean(value):
    """JSON-safe copy (NaN -> None)."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def merge_results(
    result_dirs, out_mtz, truth_mtz=None, params: MergeParams = MergeParams()
) -> dict:
    """Merge runs' integrated reflections; write the MTZ, ``merge_stats.json`` and the per-shell
    plot ``shells.png`` beside it."""
    started = time.perf_counter()
    obs, symmetry, trial = load_observations(result_dirs)
    truth = None
    if truth_mtz is not None:
        truth_hkl, truth_i, truth_symmetry = read_intensities(truth_mtz)
        if truth_symmetry.group.point_group_hm() != symmetry.group.point_group_hm():
            raise MergeError(
                f"truth {truth_mtz} is in {truth_symmetry.space_group}, results in {symmetry.space_group}"
            )
        truth = (truth_hkl, truth_i)
    merged = merge(obs, symmetry, params)
    out_mtz = Path(out_mtz)
    out_mtz.parent.mkdir(parents=True, exist_ok=True)
    write_merged_mtz(
        out_mtz, symmetry, unpack(merged.keys), merged.intensity, merged.sigma, merged.multiplicity
    )
    stats = merge_statistics(symmetry, merged, params.shells, truth)
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
        mtz=str(out_mtz),
    )
    write_json(out_mtz.with_name("merge_stats.json"), clean(stats))
    title = f"trial {trial}: {len(result_dirs)} result(s), {obs.n_images} images merged"
    plot_shells(clean(stats), out_mtz.with_name(PNG_FILE), title=title)
    return stats
