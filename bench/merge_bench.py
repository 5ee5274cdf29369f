"""Issue 18's merge against today's (``MergeParams.classic()``) on the same synthetic data.

Reflections are synthesised from a generated lysozyme-like crystal's truth
(:mod:`facility.beamline.reflections_from_truth`: crystals varying 3x in domain size and
mosaicity, B factors -5..25 A^2, resolution limits 1.0-1.35 x d_min, 3 % non-isomorphous
crystals, the trial's domain size and mosaicity 2x off), so 10^5 images take seconds to make.

1. accuracy: CC to the truth overall and per shell, ours beside today's, ``--images`` stills;
2. anomalous: 4 heavy atoms with f'' = 4 e, ΔF against the truth in the low-resolution half;
3. speed: ``--speed-images`` stills merged by ours (seconds), the error model and the slope
   of its normal-probability plot;
4. pump-probe: ``--images`` stills per laser state (a light state with 100 of 1000 atoms moved
   1.5 A in 50 % of the unit cells), split by ``laser_on``: Riso, CCiso and the correlation of
   light - dark with the truth difference (overall and per shell), ours beside the classic merge.

Sections 1 and 4 also show ours left on the median crystal's B (``b_reference_percentile=50``,
the convention before ``kernels/merging/overall_b.py``).

    .venv/bin/python bench/merge_bench.py [--images 10000] [--speed-images 100000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facility.beamline.crystal_model import (  # noqa: E402
    AnomalousSites,
    LightState,
    make_crystal,
    write_truth_mtz,
)
from facility.beamline.reflections_from_truth import (  # noqa: E402
    SyntheticParams,
    synthesise,
    trial_settings,
)
from kernels.crystal.symmetry import CrystalSymmetry, unpack  # noqa: E402
from kernels.merging.algorithm import MergeParams, merge  # noqa: E402
from kernels.merging.cli import read_truth  # noqa: E402
from kernels.merging.splits import (  # noqa: E402
    SplitSpec,
    difference_truth_cc,
    equal_count_shells,
    merge_splits,
    truth_difference,
)
from kernels.merging.statistics import merge_statistics, pearson  # noqa: E402

LIGHT = LightState(moved_atoms=100, fraction=0.5, shift_a=1.5)

CELL, SPACE_GROUP, D_MIN = (79.1, 79.1, 38.4, 90.0, 90.0, 90.0), "P 43 21 2", 1.9
SYMMETRY = CrystalSymmetry.create(CELL, SPACE_GROUP)


def crystal_and_truth(work: Path, anomalous: AnomalousSites = AnomalousSites()):
    crystal = make_crystal(CELL, SPACE_GROUP, D_MIN, seed=3, anomalous=anomalous)
    path = work / f"truth{anomalous.count}.mtz"
    write_truth_mtz(path, crystal)
    return crystal, read_truth(path, SYMMETRY)


def timed_merge(obs, params: MergeParams):
    """The merge, its wall seconds and its CPU seconds (the machine may be shared)."""
    started, cpu = time.perf_counter(), time.process_time()
    merged = merge(obs, SYMMETRY, params)
    return merged, time.perf_counter() - started, time.process_time() - cpu


def variants(synthetic: SyntheticParams):
    """Today's merge, ours, and ours left on the median crystal's B (as before overall_b.py)."""
    trial = trial_settings(synthetic)
    return (
        ("today", MergeParams.classic(**trial)),
        ("ours", MergeParams(**trial)),
        ("ours, median crystal's B", MergeParams(**trial, b_reference_percentile=50.0)),
    )


def accuracy(work: Path, images: int, reflections: int) -> None:
    crystal, (truth, _) = crystal_and_truth(work)
    synthetic = SyntheticParams(images=images, reflections_per_image=reflections)
    obs = synthesise(crystal, synthetic)
    print(f"1. accuracy: {images} images, {len(obs)} observations (trial partiality 2x off)")
    rows = {}
    for name, params in variants(synthetic):
        merged, seconds, cpu = timed_merge(obs, params)
        stats = merge_statistics(SYMMETRY, merged, 10, truth)
        rows[name] = stats
        o = stats["overall"]
        print(
            f"   {name:5s} CC truth {o['cc_truth']:.4f} (on the truth's Wilson B "
            f"{o['cc_truth_wilson_b']:.4f}, B {o['truth_relative_b']:+.1f})  CC1/2 {o['cc_half']:.4f}  "
            f"{seconds:.1f} s ({cpu:.1f} s CPU)  rejected {merged.rejected_images}"
        )
    print("   shell  d_min   CC1/2 today/ours   CC truth today / ours   gain")
    for i, (t, o) in enumerate(zip(rows["today"]["shells"], rows["ours"]["shells"])):
        print(
            f"   {i:5d}  {o['d_min']:5.2f}  {t['cc_half']:6.3f} / {o['cc_half']:6.3f}"
            f"     {t['cc_truth']:6.3f} / {o['cc_truth']:6.3f}      {o['cc_truth'] - t['cc_truth']:+.3f}"
        )
    print(f"   suggested d_min (CC1/2 fit): {rows['ours']['overall']['suggested_d_min']:.2f} A")


def anomalous(work: Path, images: int, reflections: int) -> None:
    crystal, (truth, truth_ano) = crystal_and_truth(work, AnomalousSites("Se", 4, 4.0))
    synthetic = SyntheticParams(images=images, reflections_per_image=reflections, seed=2)
    merged, seconds, _ = timed_merge(
        synthesise(crystal, synthetic), MergeParams(**trial_settings(synthetic))
    )
    stats = merge_statistics(SYMMETRY, merged, 10, truth, truth_ano)
    low = stats["overall"]["low_resolution_half"]
    print(
        f"2. anomalous: {images} images, 4 Se (f''=4): CC(ΔF, truth ΔF) low-resolution half "
        f"{low['cc_ano_truth']:.3f}, CCano {low['cc_ano']:.3f}; per shell "
        + " ".join(f"{s['cc_ano_truth']:.2f}" for s in stats["shells"])
        + f"  ({seconds:.1f} s)"
    )


def speed(work: Path, images: int, reflections: int) -> None:
    crystal, _ = crystal_and_truth(work)
    synthetic = SyntheticParams(images=images, reflections_per_image=reflections, seed=7)
    obs = synthesise(crystal, synthetic)
    merged, seconds, cpu = timed_merge(obs, MergeParams(**trial_settings(synthetic)))
    e = merged.error_model
    print(
        f"3. speed: {images} images, {len(obs)} observations merged with post-refinement in "
        f"{seconds:.1f} s ({cpu:.1f} s CPU; load average {os.getloadavg()[0]:.1f}); error model a={e.a:.3f} b={e.b:.3f}, normal-probability slope "
        f"{merged.normal_probability_slope:.3f}"
    )


def pump_probe(work: Path, images: int, reflections: int) -> None:
    crystal = make_crystal(CELL, SPACE_GROUP, D_MIN, seed=3, light=LIGHT)
    truths = []
    for name, state in (("dark", crystal), ("light", crystal.light())):
        write_truth_mtz(work / f"{name}.mtz", state)
        truths.append(read_truth(work / f"{name}.mtz", SYMMETRY)[0])
    synthetic = SyntheticParams(images=2 * images, reflections_per_image=reflections, seed=5)
    obs = synthesise(crystal, synthetic)
    print(f"4. pump-probe: {images} images per laser state, {len(obs)} observations")
    for name, params in variants(synthetic):
        started = time.perf_counter()
        split = merge_splits(obs, SYMMETRY, SplitSpec("laser_on"), params)
        diff = split.differences["1"]
        print(
            f"   {name:5s} CC(light - dark, truth difference) "
            f"{difference_truth_cc(SYMMETRY, diff, *truths):.3f}  Riso {diff.riso:.3f}  "
            f"CCiso {diff.cc_iso:.4f}  images {split.images}  ({time.perf_counter() - started:.1f} s)"
        )
        print("         per shell " + " ".join(f"{cc:.2f}" for cc in shell_ccs(diff, truths)))


def shell_ccs(diff, truths) -> list[float]:
    """CC(light - dark, truth difference) in 10 equal-count shells, low to high resolution."""
    true = truth_difference(SYMMETRY, diff.keys, *truths)
    shell = equal_count_shells(SYMMETRY.resolution(unpack(diff.keys)), 10)
    ok = np.isfinite(true)
    return [pearson(diff.delta[ok & (shell == s)], true[ok & (shell == s)]) for s in range(10)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--speed-images", type=int, default=100000)
    parser.add_argument("--reflections", type=int, default=150, help="per image")
    parser.add_argument("--only", choices=("accuracy", "anomalous", "speed", "pump-probe"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.only in (None, "accuracy"):
            accuracy(work, args.images, args.reflections)
        if args.only in (None, "anomalous"):
            anomalous(work, args.images, args.reflections)
        if args.only in (None, "speed"):
            speed(work, args.speed_images, args.reflections)
        if args.only in (None, "pump-probe"):
            pump_probe(work, args.images, args.reflections)


if __name__ == "__main__":
    main()
