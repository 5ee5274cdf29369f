"""``make demo`` and ``make up``: a simulated beamtime driven through the whole system.

``demo``: start the emulated HPC center and Airflow (SQLite metadata, LocalExecutor, all on
127.0.0.1), let the simulated beamline conclude a few runs, wait while the run-concluded events
drive every run through the DAGs, print the merged statistics and where the results are, stop.

``up``: the same stack left running, the web UI on 127.0.0.1:8080 with a printed login, the
simulator concluding a run every few minutes, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import signal
import sys
import time
from pathlib import Path

from facility.beamline.simulate import SimulationParams, simulate_experiment
from facility.beamtime_stack import running_beamtime


def simulate_run(exp_dir: Path, number: int, images: int) -> None:
    params = dataclasses.replace(SimulationParams(), chunk_size=max(images // 2, 1))
    simulate_experiment(exp_dir, 1, images, seed=0, params=params, first_run=number)


def report(exp_dir: Path, runs: list[str], trial: str) -> None:
    for run in runs:
        results = exp_dir / "results" / trial / run
        summary = json.loads((results / "summary.json").read_text())
        overall = json.loads((results / "merge_stats.json").read_text()).get("overall", {})
        funnel = " -> ".join(
            f"{summary.get(k, '?')} {k}" for k in ("images", "hits", "indexed", "integrated")
        )
        print(
            f"{run}: {funnel}; merged {overall.get('n_unique', '?')} reflections, "
            f"completeness {overall.get('completeness', float('nan')):.2f}, CC1/2 {overall.get('cc_half', float('nan')):.3f}"
        )
    for dataset in sorted((exp_dir / "datasets").glob(f"*/{trial}/merge_stats.json")):
        overall = json.loads(dataset.read_text()).get("overall", {})
        print(
            f"dataset {dataset.parent.parent.name}: completeness {overall.get('completeness', float('nan')):.2f}, "
            f"CC1/2 {overall.get('cc_half', float('nan')):.3f} -> {dataset.parent / 'merged.mtz'}"
        )
    print(
        f"results: {exp_dir / 'results' / trial} (merged.mtz, merge_stats.json, summary.json, weather.png per run)"
    )


def demo(workdir: Path, runs: int, images: int) -> int:
    started = time.monotonic()
    with running_beamtime(workdir) as beamtime:
        print(
            f"Airflow UI {beamtime.airflow.base_url} (login {beamtime.airflow.username} / "
            f"password in {beamtime.airflow.home / 'passwords.json'}); HPC center {beamtime.center.base_url}"
        )
        names = []
        for number in range(1, runs + 1):
            simulate_run(beamtime.exp_dir, number, images)
            names.append(f"r{number:04d}")
        last_end = ""
        for name in names:
            run = beamtime.wait_for_dag_run(
                "sfx_run", f"{name}__{beamtime.beamtime.trial}", timeout=600
            )
            last_end = max(last_end, run["end_date"] or "")
            print(f"{name}: pipeline {run['state']}")
            if run["state"] != "success":
                print(f"see the logs under {beamtime.airflow.home / 'logs'}", file=sys.stderr)
                return 1
        beamtime.wait_until_idle(
            "sfx_dataset_merge", since=last_end
        )  # the last run's dataset merge
        report(beamtime.exp_dir, names, beamtime.beamtime.trial)
    print(f"demo done in {time.monotonic() - started:.0f} s; everything it started is stopped")
    return 0


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt  # leave through the with-blocks, which stop everything started


def up(workdir: Path, images: int, every: float) -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    with running_beamtime(workdir, port=8080) as beamtime:
        print(
            f"Airflow UI: {beamtime.airflow.base_url}  login: {beamtime.airflow.username} / {beamtime.airflow.password}"
        )
        print(
            f"Beamtime dashboard: {beamtime.airflow.base_url}/sfxflow/  (Ctrl-C stops everything)"
        )
        number = 1
        try:
            while True:
                simulate_run(beamtime.exp_dir, number, images)
                number += 1
                time.sleep(every)
        except KeyboardInterrupt:
            print("stopping")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m facility.demo", description=__doc__)
    parser.add_argument("mode", nargs="?", choices=("demo", "up"), default="demo")
    parser.add_argument("--dir", default="var/demo", help="working folder (recreated)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--every", type=float, default=180.0, help="seconds between runs (up)")
    args = parser.parse_args(argv)
    workdir = Path(args.dir).resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    if args.mode == "up":
        return up(workdir, args.images, args.every)
    return demo(workdir, args.runs, args.images)


if __name__ == "__main__":
    sys.exit(main())
