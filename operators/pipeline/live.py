"""The decisions of the live per-run DAG (``sfx_live_run``), as plain functions.

A live run is registered when it starts (no run marker, no image count yet), gets its process
job at once (``--live``), and takes the post-run path's merge, download and publish at its end.
Which runs go live is decided from the events (:func:`split_events`): a run-started event
starts ``sfx_live_run``; a run-concluded event starts ``sfx_run`` only for a run that was not
live, so a run is never processed twice by the same trial.
"""

from __future__ import annotations

from pathlib import Path

from operators.pipeline.beamtime import Beamtime
from operators.pipeline.run import (
    RunRequestError,
    job_scripts,
    register_run,
    run_key,
    validate_trial,
)
from operators.pipeline.state import ACQUIRING, STALLED


def split_events(payloads: list[dict]) -> tuple[list[str], list[str]]:
    """(runs to start live, runs to start post-run) from run events, each run once.

    A concluded run that went live (``live``) or whose started event is in the same batch is not
    started post-run; events without ``event`` are run-concluded events (the format before live
    runs).
    """
    live = {p["run_name"] for p in payloads if p.get("event") == "started"}
    post = {
        p["run_name"]
        for p in payloads
        if p.get("event", "concluded") == "concluded" and not p.get("live")
    }
    return sorted(live), sorted(post - live)


def without_live_runs(exp_dir: str, runs: list[str]) -> list[str]:
    """``runs`` less those acquired live (``STARTED.json``): their pipeline is ``sfx_live_run``,
    so the scheduled sweep must not start a post-run ``sfx_run`` of the same trial for them."""
    from kernels.io.chunk_marker import STARTED

    return [run for run in runs if not (Path(exp_dir) / "runs" / run / STARTED).exists()]


def validate_live_request(
    bt: Beamtime, run: str, trial: str, trial_params: dict
) -> tuple[dict, dict]:
    """The trial's parameters and the run's started marker, or :class:`RunRequestError`."""
    from kernels.io.chunk_marker import read_started
    from kernels.io.marker import MarkerError

    params = validate_trial(run, trial, trial_params)
    run_dir = Path(bt.exp_dir) / "runs" / run
    try:
        started = read_started(run_dir)
    except MarkerError as exc:
        raise RunRequestError(f"run {run} cannot be read: {exc}") from None
    if started is None:
        raise RunRequestError(f"run {run} was not started live (no STARTED.json in {run_dir})")
    return params, started


def prepare_live_run(bt: Beamtime, run: str, trial: str, trial_params: dict, ranks: int) -> dict:
    """Validate, register run and trial (the run is still being acquired), build the scripts.

    The same keys as :func:`~operators.pipeline.run.prepare_run` (``files`` are what the run
    needs before its first chunk), plus ``started`` (the run-started marker).
    """
    params, started = validate_live_request(bt, run, trial, trial_params)
    run_id, trial_id = register_run(bt, run, trial, params, {})
    return {
        "run": run,
        "trial": trial,
        "run_id": run_id,
        "trial_id": trial_id,
        "files": started["files"],
        "started": started,
        "hpc_results": bt.hpc_results_dir(run, trial),
        "local_results": bt.local_results_dir(run, trial),
        "process_key": run_key(bt, run, trial, "process"),
        "merge_key": run_key(bt, run, trial, "merge"),
        **job_scripts(bt, run, trial, params, ranks, live=True),
    }


def stall_reason(run: str, timeout: float, chunks: int) -> str:
    """Why a live run was flagged: its DAQ stopped sending chunks and never concluded it."""
    return (
        f"no new chunk of {run} for {timeout:g} s and no run marker after {chunks} chunks: "
        "DAQ stopped? merged as far as it got"
    )


def record_stall(bt: Beamtime, info: dict, reason: str) -> None:
    """Flag the run stalled on the dashboard (the job ends by itself, what it got is merged)."""
    from kernels.resultsdb import ResultsDB

    with ResultsDB(bt.results_db) as db:
        db.record_pipeline_state(info["run_id"], info["trial_id"], STALLED, reason)


def record_known_images(bt: Beamtime, info: dict, images: int) -> None:
    """The run's images known so far (its closed chunks'), for the dashboard's "n/N"."""
    from kernels.resultsdb import ResultsDB

    with ResultsDB(bt.results_db) as db:
        db.record_pipeline_state(info["run_id"], info["trial_id"], ACQUIRING, total=images)


def record_live_end(bt: Beamtime, info: dict, transfer: dict, concluded_at: str | None) -> None:
    """The run's transfer and (if it concluded) its end time, in the results DB."""
    from datetime import datetime

    from kernels.resultsdb import ResultsDB

    with ResultsDB(bt.results_db) as db:
        if concluded_at:
            db.ensure_run(
                bt.experiment, info["run"], datetime.fromisoformat(concluded_at).timestamp()
            )
        db.record_transfer(
            info["run_id"], transfer["total_bytes"], transfer["seconds"], transfer["rate"]
        )
