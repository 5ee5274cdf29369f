"""Which runs to (re)process, as requests for ``sfx_run`` DAG runs."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from operators.pipeline.job_script import RUN_NAME, check_name, run_order


def run_requests(runs: list[str], trial: str, trial_params: dict, ranks: int) -> list[dict]:
    """TriggerDagRunOperator kwargs for each run, oldest first, with run id ``<run>__<trial>``."""
    check_name("trial", trial)
    return [
        {
            "trigger_run_id": f"{run}__{trial}",
            "conf": {"run": run, "trial": trial, "trial_params": trial_params, "ranks": ranks},
        }
        for run in sorted(runs, key=run_order)
    ]


def parse_run_range(text: str) -> list[str]:
    """``"1-3,7"`` -> ``["r0001", "r0002", "r0003", "r0007"]``; ValueError on anything else."""
    from kernels.runformat import run_name  # h5py loads when a task runs, not at each DAG parse

    runs: set[str] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = re.fullmatch(r"(\d{1,9})(?:\s*-\s*(\d{1,9}))?", part)
        if not m:
            raise ValueError(f"bad run range {part!r}: use e.g. 1-3,7")
        first, last = int(m[1]), int(m[2] or m[1])
        if last < first:
            raise ValueError(f"bad run range {part!r}: {last} < {first}")
        runs.update(run_name(n) for n in range(first, last + 1))
    return sorted(runs, key=run_order)


def concluded_runs(
    exp_dir, start: datetime | None = None, end: datetime | None = None
) -> list[str]:
    """Runs of the experiment concluded in [start, end) (all concluded runs if no bounds)."""
    from kernels.runformat import RunFormatError, read_marker

    found = []
    run_dirs = [path for path in (Path(exp_dir) / "runs").glob("r*") if RUN_NAME.match(path.name)]
    for run_dir in sorted(run_dirs, key=lambda path: run_order(path.name)):
        try:
            when = datetime.fromisoformat(read_marker(run_dir)["concluded_at"])
        except RunFormatError:
            continue  # still being written
        if (start is None or when >= start) and (end is None or when < end):
            found.append(run_dir.name)
    return found
