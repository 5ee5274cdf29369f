"""``make demo``: a short simulated beamtime processed on embedded defaults.

Simulates a few runs into ``var/demo/experiment``, processes each concluded run with the
kernels and prints the reduction funnel and where the results are.
"""
from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from pathlib import Path

from facility.beamline.simulate import SimulationParams, simulate_experiment
from kernels.process import process_run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m facility.demo", description=__doc__)
    parser.add_argument("--dir", default="var/demo", help="working folder (recreated)")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args(argv)
    root = Path(args.dir).resolve()
    shutil.rmtree(root, ignore_errors=True)
    exp = root / "experiment"
    print(f"simulating {args.runs} runs of {args.images} images into {exp}")
    params = dataclasses.replace(SimulationParams(), chunk_size=100)
    run_dirs = simulate_experiment(exp, args.runs, args.images, params=params)
    for run_dir in run_dirs:
        out = exp / "results" / "default" / run_dir.name
        s = process_run(run_dir, out)
        print(f"{s['run']}: {s['images']} images -> {s['hits']} hits ({s['spots_per_hit']:.0f} spots/hit), "
              f"{s['timings']['images_per_second']:.0f} images/s")
    print(f"results: {exp / 'results' / 'default'} (summary.json and images.csv per run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
