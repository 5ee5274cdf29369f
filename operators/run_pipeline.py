"""The decisions of the per-run DAG, as plain functions (the DAG file only wires them).

`prepare_run` validates a (run, trial) request and builds its job scripts; `transfer_run_files`
moves the run to the center; `publish_run` records what came back. All are idempotent.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from operators.beamtime import Beamtime
from operators.job_script import batch_script, check_name

RESULT_FILES = ["merged.mtz", "merge_stats.json", "summary.json"]
OPTIONAL_RESULT_FILES = ["weather.png", "shells.png"]


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


def prepare_run(bt: Beamtime, run: str, trial: str, trial_params: dict, ranks: int) -> dict:
    """Validate the request, register run and trial, and build both job scripts.

    Raises
    ------
    RunRequestError
        Bad names or parameters, a run that does not exist or is not concluded, or a trial name
        already used with other parameters.
    """
    # kernels (numpy, scipy, h5py) load only when a task runs, not each time the DAG is parsed
    from kernels.pipeline import ParamsError, ProcessingParams
    from kernels.resultsdb import ResultsDB
    from kernels.runformat import RunFormatError, read_marker

    try:
        check_name("run", run)
        check_name("trial", trial)
        params = ProcessingParams.from_dict(trial_params).to_dict()
        marker = read_marker(Path(bt.exp_dir) / "runs" / run)
    except (ValueError, ParamsError, RunFormatError) as exc:
        raise RunRequestError(str(exc)) from None
    with ResultsDB(bt.results_db) as db:
        run_id = db.ensure_run(
            bt.experiment, run, concluded=datetime.fromisoformat(marker["concluded_at"]).timestamp()
        )
        for tag in bt.run_tags:
            db.tag_run(run_id, tag)
        for dataset, tags in bt.datasets.items():
            db.ensure_dataset(bt.experiment, dataset, tags)
        try:
            trial_id = db.ensure_trial(trial, params)
        except ValueError as exc:
            raise RunRequestError(
                f"trial {trial!r}: {exc}; reprocess under a new trial name"
            ) from None
    hpc_results = bt.hpc_results_dir(run, trial)
    # paths inside the job are relative to its working directory, so the same script works at a
    # real center and in the emulator (which maps facility paths onto a local root)
    rel_run = os.path.relpath(bt.hpc_run_dir(run), hpc_results)
    process = [
        [
            bt.mpiexec,
            "-n",
            str(ranks),
            "python",
            "-m",
            "kernels",
            "process",
            "--run",
            rel_run,
            "--out",
            ".",
            "--params",
            "params.json",
            "--trial",
            trial,
            "--experiment",
            bt.experiment,
            "--db",
            bt.results_db,
        ]
    ]
    merge = [["python", "-m", "kernels", "merge", "--results", ".", "--out", "merged.mtz"]]
    return {
        "run": run,
        "trial": trial,
        "run_id": run_id,
        "trial_id": trial_id,
        "files": marker["files"],
        "hpc_results": hpc_results,
        "local_results": bt.local_results_dir(run, trial),
        "process_key": run_key(bt, run, trial, "process"),
        "merge_key": run_key(bt, run, trial, "merge"),
        "process_script": batch_script(
            f"sfx-{run}-{trial}"[:64],
            hpc_results,
            process,
            ntasks=ranks,
            files={"params.json": json.dumps(params)},
            env=bt.job_env,
        ),
        "merge_script": batch_script(
            f"sfx-merge-{run}-{trial}"[:64], hpc_results, merge, env=bt.job_env
        ),
    }


def transfer_run_files(bt: Beamtime, info: dict) -> dict:
    """Copy the run's files (with its calibration snapshot) to the center; record the transfer."""
    from kernels.resultsdb import ResultsDB
    from operators.transfer import transfer_run

    report = transfer_run(
        f"{bt.transfer_source}/runs",
        f"{bt.transfer_dest}/runs",
        info["run"],
        info["files"],
        parallel_files=bt.transfer_parallel_files,
    )
    with ResultsDB(bt.results_db) as db:
        db.record_transfer(info["run_id"], report.total_bytes, report.seconds, report.rate)
    return report.to_dict()


def publish_run(bt: Beamtime, info: dict, process: dict, merge: dict, downloaded: dict) -> dict:
    """Record the run's summary, merged statistics and jobs in the results DB; return the funnel."""
    from kernels.resultsdb import ResultsDB

    local = Path(info["local_results"])
    summary = json.loads((local / "summary.json").read_text())
    stats = json.loads((local / "merge_stats.json").read_text())
    with ResultsDB(bt.results_db) as db:
        for job in (process, merge):
            db.record_job(
                info["run_id"], info["trial_id"], job["machine"], job["jobid"], job["state"]
            )
        funnel = {
            k: summary[k]
            for k in ("images", "hits", "indexed", "refined", "integrated")
            if k in summary
        }
        db.record_run_summary(
            info["run_id"],
            info["trial_id"],
            summary.get("status", "complete"),
            funnel,
            summary.get("timings", {}),
        )
        db.record_merge_stats(
            info["trial_id"],
            stats.get("overall", {}),
            stats.get("shells", []),
            run_id=info["run_id"],
        )
    return {
        "run": info["run"],
        "trial": info["trial"],
        **funnel,
        "files": sorted(downloaded),
        "results": str(local),
    }
