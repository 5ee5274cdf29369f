"""Turnaround of one run: seconds from "run concluded" to its merged MTZ in the experiment folder.

Drives the whole system (emulated center with real MPI jobs, XRootD third-party copy, Airflow
with scheduler, triggerer, dag-processor and api-server) and splits the time into transfer,
queue, compute, merge, download and orchestration overhead (everything else: event detection,
scheduling, deferral wake-ups). Goal: orchestration overhead <= 10 s; the reference system
(Blaschke et al. 2021) took 3.5-10 minutes end to end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from datetime import datetime
from pathlib import Path

from facility.beamline.simulate import SimulationParams, simulate_experiment
from facility.beamtime_stack import running_beamtime
from kernels.io.marker import read_marker


def task_times(bt, run_id: str) -> dict:
    """task id -> (start, end) UNIX times of the tasks of one sfx_run DAG run."""
    return {
        ti["task_id"]: (
            datetime.fromisoformat(ti["start_date"]).timestamp(),
            datetime.fromisoformat(ti["end_date"]).timestamp(),
        )
        for ti in bt.task_instances("sfx_run", run_id)
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--xrootd", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_beamtime(
            Path(tmp),
            experiment="bench",
            use_xrootd=args.xrootd,
            ranks=args.ranks,
            facility_poll_seconds=1.0,
            job_poll=(0.2, 1.5, 2.0),
        ) as bt,
    ):
        params = dataclasses.replace(SimulationParams(), chunk_size=250)
        simulate_experiment(bt.exp_dir, 1, args.images, seed=1, params=params, log=print)
        concluded = datetime.fromisoformat(
            read_marker(bt.exp_dir / "runs" / "r0001").concluded_at
        ).timestamp()
        state = bt.wait_for_dag_run("sfx_run", "r0001__default", timeout=1800)["state"]
        if state != "success":
            print(f"pipeline {state}; logs in {bt.airflow.home / 'logs'}")
            return 1
        results = bt.exp_dir / "results" / "default" / "r0001"
        done = (results / "merged.mtz").stat().st_mtime
        t = task_times(bt, "r0001__default")
        summary = json.loads((results / "summary.json").read_text())
        compute = summary["timings"]["wall_seconds"]
        process_task = t["process"][1] - t["process"][0]
        merge_task = t["merge"][1] - t["merge"][0]
        parts = {
            "transfer": t["transfer"][1] - t["transfer"][0],
            "compute (process job)": compute,
            "merge job": merge_task,
            "download": t["download"][1] - t["download"][0],
        }
        total = done - concluded
        parts["queue + job start-up"] = max(process_task - compute, 0.0)
        parts["orchestration overhead"] = total - sum(parts.values())
        print(
            f"\nrun of {args.images} images, {summary['hits']} hits, {summary.get('indexed', '?')} indexed, "
            f"{args.ranks} ranks, transfer {'XRootD HTTP-TPC' if args.xrootd else 'local copy'}"
        )
        for name, seconds in parts.items():
            print(f"  {name:<26}{seconds:8.1f} s  {100 * seconds / total:5.1f} %")
        print(f"  {'total (concluded -> MTZ)':<26}{total:8.1f} s")
        print(
            f"reference system (Blaschke et al. 2021): 210-600 s end to end, "
            f"i.e. {210 / total:.1f}-{600 / total:.1f} x longer than this run"
        )
        goal = parts["orchestration overhead"] <= 10.0
        print(f"goal orchestration overhead <= 10 s: {'met' if goal else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
