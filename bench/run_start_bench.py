"""Run-started latency: a live run's ``STARTED.json`` → ``prepare`` of its ``sfx_live_run``.

Where the seconds go, stage by stage, read from Airflow's own timestamps (REST API) beside the
moment the bench wrote the marker:

* ``event``: marker written → asset event (the run-events trigger's poll, the triggerer's loop)
* ``events run``: asset event → ``sfx_run_events`` run queued (the scheduler's asset check)
* ``new_live_runs``: events run queued → its ``new_live_runs`` task started (scheduling, the
  executor starting a worker)
* ``new_live_runs runs``: that task started → ended (the worker parses the DAG file, runs it)
* ``trigger task``: ``new_live_runs`` ended → ``start_live_pipeline`` started (mapping, worker)
* ``live run``: ``start_live_pipeline`` started → ``sfx_live_run`` run queued
* ``prepare``: live run queued → ``prepare`` started
* ``prepare runs``: ``prepare`` started → ended (parse, register the run, build its scripts)

The total is the marker written → ``prepare`` ended: from then on the run's transfer and job
go on. A first run (not counted) warms each stack up.

Each variant (``--variants``) is a beamtime stack of its own (Airflow on SQLite, emulated center
with its system "unavailable", so no live job ever starts and the runs stay parked at
``wait_for_facility``); all variants are up at once and the runs alternate between them, one at a
time, so the machine's load hits each alike. Prints each stage's median per variant.

    python bench/run_start_bench.py --runs 4 --variants stack idle0.2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

from facility.beamtime_stack import running_beamtime
from kernels.io.chunk_marker import write_started
from kernels.io.marker import run_name

# Airflow settings over the stack's own (facility/airflow_stack.py). Tried and not taken: the
# scheduler's idle sleep at 0.2 s instead of 1 s (8.9 s beside 9.1 s in total, load ~10)
VARIANTS: dict[str, dict[str, str]] = {
    "stack": {},
    "idle0.2": {"AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2"},
}
STAGES = (
    "event",
    "events run",
    "new_live_runs",
    "new_live_runs runs",
    "trigger task",
    "live run",
    "prepare",
    "prepare runs",
)


def seconds(stamp: str | None) -> float:
    """POSIX seconds of one of Airflow's ISO timestamps."""
    if not stamp:
        raise ValueError("a stage has no timestamp yet")
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def task(bt, dag_id: str, run_id: str, task_id: str) -> dict:
    """The task instance (the first map index) of ``task_id`` in one DAG run."""
    return next(t for t in bt.task_instances(dag_id, run_id) if t["task_id"] == task_id)


def events_run_of(bt, run: str) -> tuple[dict, dict]:
    """(the ``sfx_run_events`` run that started live run ``run``, its asset event)."""
    for dag_run in bt.dag_runs("sfx_run_events", limit=20):
        path = f"dags/sfx_run_events/dagRuns/{dag_run['dag_run_id']}/upstreamAssetEvents"
        for event in bt.api(path)["asset_events"]:
            if event["extra"].get("payload", {}).get("run_name") == run:
                return dag_run, event
    raise LookupError(f"no sfx_run_events run consumed the started event of {run}")


def stages(bt, run: str, written: float) -> list[float]:
    """Seconds of each of ``STAGES`` for live run ``run`` whose marker was written at ``written``."""
    events_run, event = events_run_of(bt, run)
    new = task(bt, "sfx_run_events", events_run["dag_run_id"], "new_live_runs")
    start = task(bt, "sfx_run_events", events_run["dag_run_id"], "start_live_pipeline")
    live_run = bt.api(f"dags/sfx_live_run/dagRuns/{run}__{bt.beamtime.trial}")
    prepare = task(bt, "sfx_live_run", live_run["dag_run_id"], "prepare")
    points = [
        written,
        seconds(event["timestamp"]),
        seconds(events_run["queued_at"]),
        seconds(new["start_date"]),
        seconds(new["end_date"]),
        seconds(start["start_date"]),
        seconds(live_run["queued_at"]),
        seconds(prepare["start_date"]),
        seconds(prepare["end_date"]),
    ]
    return [b - a for a, b in zip(points, points[1:], strict=False)]


def start_run(bt, number: int) -> tuple[str, float]:
    """Write run ``number``'s ``STARTED.json`` (a live DAQ's first act); (run, when)."""
    run_dir = bt.exp_dir / "runs" / run_name(number)
    run_dir.mkdir(parents=True)
    written = time.time()
    write_started(run_dir, number, 120.0)
    return run_name(number), written


def wait_for_prepare(bt, run: str, timeout: float = 180.0) -> None:
    """Until ``prepare`` of the run's ``sfx_live_run`` has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if task(bt, "sfx_live_run", f"{run}__{bt.beamtime.trial}", "prepare")["end_date"]:
                return
        except Exception:  # the DAG run or its task instance does not exist yet
            pass
        time.sleep(0.5)
    raise TimeoutError(f"prepare of {run} never started within {timeout:g} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4, help="runs per variant")
    parser.add_argument("--variants", nargs="+", default=["stack"], choices=VARIANTS)
    args = parser.parse_args()
    with ExitStack() as stack:
        stacks = {}
        for name in args.variants:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sfx-start-")))
            bt = stack.enter_context(
                running_beamtime(workdir, experiment=f"start{name}", airflow_env=VARIANTS[name])
            )
            bt.center.admin.set_status("perlmutter", "unavailable", ["run-start bench"])
            stacks[name] = bt
        measured: dict[str, list[list[float]]] = {name: [] for name in stacks}
        for i in range(args.runs + 1):
            for name, bt in stacks.items():
                run, written = start_run(bt, 1 + i)
                wait_for_prepare(bt, run)
                row = stages(bt, run, written)
                if i > 0:  # the first is the warm-up: the stack's first tasks start cold
                    measured[name].append(row)
                label = f"{name} {run}" + (" (warm-up)" if i == 0 else "")
                print(label, " ".join(f"{s:.1f}" for s in row), flush=True)
        print("median seconds:", " | ".join(STAGES), "| total")
        for name, rows in measured.items():
            medians = [statistics.median(col) for col in zip(*rows, strict=True)]
            total = statistics.median(sum(row) for row in rows)
            print(f"{name:8s}", " ".join(f"{m:5.1f}" for m in medians), f"| {total:.1f}")


if __name__ == "__main__":
    main()
