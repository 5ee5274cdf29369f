"""The decisions of the per-run DAG, as plain functions (the DAG file only wires them).

`prepare_run` validates a (run, trial) request and builds its job scripts; `publish_run` records
what came back (the transfer step is :func:`operators.transfer.transfer_run_files`). Both are
idempotent.
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime
from pathlib import Path

from kernels.funnel import COUNTS
from operators.pipeline.beamtime import Beamtime
from operators.pipeline.job_script import batch_script, check_name
from operators.pipeline.state import PUBLISHED, WAITING

# images.csv: the per-image table (status and reason of every event) comes back with the results
RESULT_FILES = ["merged.mtz", "merge_stats.json", "summary.json", "images.csv"]
OPTIONAL_RESULT_FILES = ["weather.png", "shells.png"]


LIVE_TIME_LIMIT = "12:00:00"  # a live job lasts as long as its run (runs last 5-30 minutes)


class RunRequestError(ValueError):
    """A (run, trial) request that cannot be processed, with the reason."""


def at_center_asset_uri(experiment: str) -> str:
    """The asset updated each time a run is whole and verified at the HPC center."""
    return f"sfxflow://{experiment}/runs-at-center"


def merged_asset_uri(experiment: str) -> str:
    """The asset updated each time a run's merged result is published."""
    return f"sfxflow://{experiment}/merged-runs"


def run_key(bt: Beamtime, run: str, trial: str, step: str) -> str:
    """Idempotency key of one step's batch job."""
    return f"{bt.experiment}.{run}.{trial}.{step}"


def trial_name_suggestion(trial: str, taken: set[str]) -> str:
    """The first of ``<trial>-2``, ``<trial>-3``, ... not in ``taken``: a name the user can pick."""
    n = 2
    while f"{trial}-{n}" in taken:
        n += 1
    return f"{trial}-{n}"


def run_problem(runs_dir: Path, run: str) -> str | None:
    """Why ``run`` cannot be processed yet (it does not exist, or is not concluded), or None."""
    from kernels.io.marker import MARKER

    if not (runs_dir / run).is_dir():
        return f"run not concluded: run {run} does not exist under {runs_dir}"
    if not (runs_dir / run / MARKER).exists():
        return f"run {run} is not concluded yet (no {MARKER}): wait for it"
    return None


def validate_trial(run: str, trial: str, trial_params: dict) -> dict:
    """The trial's full parameters, or :class:`RunRequestError` naming the bad name or value."""
    from kernels.stages.pipeline import ParamsError, ProcessingParams

    try:
        check_name("run", run)
        check_name("trial", trial)
        return ProcessingParams.from_dict(trial_params).to_dict()
    except (ValueError, ParamsError) as exc:
        raise RunRequestError(str(exc)) from None


def validate_request(bt: Beamtime, run: str, trial: str, trial_params: dict) -> tuple[dict, dict]:
    """The trial's full parameters and the run's marker (plus its number of ``images``), or
    :class:`RunRequestError` saying what the user can do (names, parameters, a run that does not
    exist, is not concluded yet or is unreadable)."""
    # kernels (numpy, scipy, h5py) load only when a task runs, not each time the DAG is parsed
    from kernels.io.marker import MarkerError, read_marker
    from kernels.io.runformat import RunFormatError, open_run

    params = validate_trial(run, trial, trial_params)
    runs_dir = Path(bt.exp_dir) / "runs"
    problem = run_problem(runs_dir, run)
    if problem:
        raise RunRequestError(problem)
    try:
        marker = read_marker(runs_dir / run).to_dict()
        with open_run(runs_dir / run) as opened:  # its index files only
            return params, {**marker, "images": opened.n_events}
    except (MarkerError, RunFormatError) as exc:
        raise RunRequestError(f"run {run} cannot be read: {exc}") from None


def register_run(bt: Beamtime, run: str, trial: str, params: dict, marker: dict) -> tuple[int, int]:
    """(run id, trial id) in the results DB: the run with its tags and datasets, the trial with
    its parameters (immutable: a name used with other parameters is refused, with a new name);
    the pipeline is now "waiting"."""
    from kernels.resultsdb import ResultsDB, TrialParamsChangedError

    concluded = marker.get("concluded_at")  # a live run registers before it concludes
    with ResultsDB(bt.results_db) as db:
        run_id = db.ensure_run(
            bt.experiment,
            run,
            concluded=datetime.fromisoformat(concluded).timestamp() if concluded else None,
        )
        for tag in bt.run_tags:
            db.tag_run(run_id, tag)
        for dataset, tags in bt.datasets.items():
            db.ensure_dataset(bt.experiment, dataset, tags)
        try:
            trial_id = db.ensure_trial(trial, params)
        except TrialParamsChangedError:
            taken = {t["name"] for t in db.trials()}
            raise RunRequestError(
                f"trial {trial} exists with other parameters: pick a new trial name, "
                f"e.g. {trial_name_suggestion(trial, taken)}"
            ) from None
        db.record_pipeline_state(run_id, trial_id, WAITING, total=marker.get("images"))
    return run_id, trial_id


def job_scripts(
    bt: Beamtime, run: str, trial: str, params: dict, ranks: int, live: bool = False
) -> dict:
    """The process and merge batch scripts of a run and trial (no secret in them).

    ``live``: the process job starts with the run and follows its chunks as they land at the
    center (``--live``), ending ``stalled`` after ``bt.live_timeout`` seconds without one.
    """
    hpc_results = bt.hpc_results_dir(run, trial)
    # paths inside the job are relative to its working directory, so the same script works at a
    # real center and in the emulator (which maps facility paths onto a local root)
    rel_run = os.path.relpath(bt.hpc_run_dir(run), hpc_results)
    process = [bt.mpiexec, "-n", str(ranks), "python", "-m", "kernels", "process"]
    process += ["--run", rel_run, "--out", ".", "--params", "params.json", "--trial", trial]
    process += ["--experiment", bt.experiment, "--db", bt.results_db]
    if live:
        process += ["--live", "--live-timeout", f"{bt.live_timeout:g}"]
    merge = ["python", "-m", "kernels", "merge", "--results", ".", "--out", "merged.mtz"]
    return {
        "process_script": batch_script(
            f"sfx-{run}-{trial}"[:64],
            hpc_results,
            [process],
            ntasks=ranks,
            time_limit=LIVE_TIME_LIMIT if live else "00:30:00",
            files={"params.json": json.dumps(params)},
            env=bt.job_env,
        ),
        "merge_script": batch_script(
            f"sfx-merge-{run}-{trial}"[:64], hpc_results, [merge], env=bt.job_env
        ),
    }


def prepare_run(bt: Beamtime, run: str, trial: str, trial_params: dict, ranks: int) -> dict:
    """Validate the request, register run and trial, and build both job scripts.

    Raises
    ------
    RunRequestError
        Bad names or parameters, a run that does not exist or is not concluded, or a trial name
        already used with other parameters.
    """
    params, marker = validate_request(bt, run, trial, trial_params)
    run_id, trial_id = register_run(bt, run, trial, params, marker)
    return {
        "run": run,
        "trial": trial,
        "run_id": run_id,
        "trial_id": trial_id,
        "files": marker["files"],
        "hpc_results": bt.hpc_results_dir(run, trial),
        "local_results": bt.local_results_dir(run, trial),
        "process_key": run_key(bt, run, trial, "process"),
        "merge_key": run_key(bt, run, trial, "merge"),
        **job_scripts(bt, run, trial, params, ranks),
    }


def published_results(info: dict) -> tuple[dict, dict]:
    """(summary.json, merge_stats.json) of a run's downloaded results."""
    local = Path(info["local_results"])
    return (
        json.loads((local / "summary.json").read_text()),
        json.loads((local / "merge_stats.json").read_text()),
    )


def publish_run(
    bt: Beamtime, info: dict, process: dict, merge: dict, downloaded: dict, detail: str = ""
) -> dict:
    """Record the run's summary, merged statistics and jobs in the results DB; return the funnel.

    ``detail`` goes with the "published" state (a live run merged as far as it got says so).
    """
    from kernels.merging.statistics import stored_overall
    from kernels.resultsdb import ResultsDB

    local = Path(info["local_results"])
    summary, stats = published_results(info)
    with ResultsDB(bt.results_db) as db:
        for job in (process, merge):
            db.record_job(
                info["run_id"], info["trial_id"], job["machine"], job["jobid"], job["state"]
            )
        funnel = {k: summary[k] for k in COUNTS if k in summary}
        db.record_run_summary(
            info["run_id"],
            info["trial_id"],
            summary.get("status", "complete"),
            funnel,
            summary.get("timings", {}),
        )
        db.record_merge_stats(
            info["trial_id"],
            stored_overall(stats),
            stats.get("shells", []),
            run_id=info["run_id"],
        )
        db.record_pipeline_state(info["run_id"], info["trial_id"], PUBLISHED, detail)
    return {
        "run": info["run"],
        "trial": info["trial"],
        **funnel,
        "files": sorted(downloaded),
        "results": str(local),
    }


def run_note(summary: dict, stats: dict) -> str:
    """The one-line note of a published run, e.g. "55/200 hits (27.5 %), 55 indexed, CC½ 0.986"."""
    images, hits = summary.get("images", 0), summary.get("hits", 0)
    rate = f" ({100 * hits / images:.1f} %)" if images else ""
    note = f"{hits}/{images} hits{rate}, {summary.get('indexed', 0)} indexed"
    cc_half = stats.get("overall", {}).get("cc_half")
    known = isinstance(cc_half, (int, float)) and math.isfinite(cc_half)
    return note + (f", CC½ {cc_half:.3f}" if known else "")
