"""Where a live run's seconds after its run marker go, for ``bench/live_bench.py``.

Each phase is a moment after the run marker at the DAQ (its mtime), taken from what the stack
leaves behind: file mtimes at the center and in the experiment folder (sub-second), the
Airflow task instances' start and end, and the merge job's own record (``merge_stats.json``'s
``seconds``: the merge itself, and the job's start and end as sacct reports them, 1 s).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from kernels.io.chunk_marker import chunk_marker_name, read_chunk_markers
from kernels.io.marker import MARKER, run_name
from operators.pipeline.run import run_key
from sfapi_client import Client

GOAL_SECONDS = 30.0  # issue 17: live marker -> MTZ <= final merge + 30 s below the rate


def _iso(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp).timestamp() if stamp else None


def _mtime(path: Path) -> float | None:
    return path.stat().st_mtime if path.exists() else None


def _job_span(bt, key: str) -> tuple[float | None, float | None]:
    """(start, end) of the job under idempotency ``key``, as sacct reports them (local time)."""
    center = bt.center
    with Client(center.base_url, credentials_file=center.credentials.credentials_file) as client:
        job = client.find_job(bt.beamtime.machine, key)
    if job is None:
        return None, None
    row = job.row
    stamps = (row.get("start") or row.get("start_time"), row.get("end") or row.get("end_time"))
    return tuple(
        datetime.strptime(s, "%Y-%m-%dT%H:%M:%S").timestamp() if s and s[0].isdigit() else None
        for s in stamps
    )  # type: ignore[return-value]


def live_phases(bt, number: int, rows_whole: dict[int, float], trial: str = "default") -> dict:
    """Seconds after the run marker of each phase of live run ``number`` (None: not seen).

    ``rows_whole``: when each chunk's image rows were all in the results DB (bench's watcher).
    """
    name = run_name(number)
    dag_run = f"{name}__{trial}"
    marker = (bt.exp_dir / "runs" / name / MARKER).stat().st_mtime
    center_run = bt.center.root / bt.beamtime.hpc_run_dir(name).lstrip("/")
    results = bt.center.root / bt.beamtime.hpc_results_dir(name, trial).lstrip("/")
    local = Path(bt.beamtime.local_results_dir(name, trial))
    tasks = {ti["task_id"]: ti for ti in bt.task_instances("sfx_live_run", dag_run)}
    merge_start, merge_end = _job_span(bt, run_key(bt.beamtime, name, trial, "merge"))
    chunk_landed = (
        [
            (center_run / chunk_marker_name(m.run_name, m.chunk)).stat().st_mtime
            for m in read_chunk_markers(center_run)
        ]
        if center_run.exists()
        else []
    )
    moments = {
        "last chunk marker at the center": max(chunk_landed, default=None),
        "run marker at the center (follow_chunks done)": _mtime(center_run / MARKER),
        "last chunk's rows in the DB": max(rows_whole.values(), default=None),
        "job: checkpoint written (parts published)": _mtime(results / "checkpoint.json"),
        "job: integrated.h5 written": _mtime(results / "integrated.h5"),
        "job: summary.json written (outputs done)": _mtime(results / "summary.json"),
        "wait_for_job noticed (task end)": _iso(tasks.get("wait_for_job", {}).get("end_date")),
        "merge task started": _iso(tasks.get("merge", {}).get("start_date")),
        "merge job started (sacct)": merge_start,
        "merge job ended (sacct)": merge_end,
        "merge task ended": _iso(tasks.get("merge", {}).get("end_date")),
        "download ended": _iso(tasks.get("download", {}).get("end_date")),
        "MTZ in the experiment folder": _mtime(local / "merged.mtz"),
    }
    stats = json.loads((local / "merge_stats.json").read_text())
    return {
        "moments": {k: (None if t is None else t - marker) for k, t in moments.items()},
        "merge_seconds": float(stats["seconds"]),
        "merge_job_seconds": None
        if merge_start is None or merge_end is None
        else merge_end - merge_start,
    }


def show_phases(phases: dict) -> None:
    """Print the phase table and the goal's check (marker -> MTZ minus the final merge)."""
    for label, seconds in phases["moments"].items():
        print(f"      {label:<48} {'-' if seconds is None else f'{seconds:7.1f} s'}")
    mtz = phases["moments"]["MTZ in the experiment folder"]
    own, job = phases["merge_seconds"], phases["merge_job_seconds"]
    print(f"      final merge: {own:.1f} s merging (merge_stats.json), job {job} s (sacct)")
    if mtz is not None:
        wall = job if job is not None else own
        print(
            f"      live marker -> MTZ minus final merge job: {mtz - wall:.1f} s "
            f"(goal <= {GOAL_SECONDS:g} s); minus the merging alone: {mtz - own:.1f} s"
        )
