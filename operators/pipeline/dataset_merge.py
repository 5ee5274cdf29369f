"""Dataset merges: which datasets a published run belongs to, and their merge jobs."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from kernels.resultsdb import ResultsDB
from operators.pipeline.beamtime import Beamtime
from operators.pipeline.job_script import batch_script


def dataset_merge_requests(bt: Beamtime, published: list[dict]) -> list[dict]:
    """One merge request per (dataset, trial) touched by the published runs.

    A dataset is merged from every run carrying all its tags that has results for the trial.
    The job key names the exact set of runs, so the same set is never merged twice while a
    grown set is.
    """
    requests = []
    with ResultsDB(bt.results_db) as db:
        for trial in sorted({p["trial"] for p in published}):
            touched = {p["run"] for p in published if p["trial"] == trial}
            for dataset in sorted(bt.datasets):
                runs = [
                    name
                    for _, name in db.dataset_runs(bt.experiment, dataset)
                    if (Path(bt.local_results_dir(name, trial)) / "summary.json").exists()
                ]
                if not touched & set(runs):
                    continue
                workdir = bt.hpc_dataset_dir(dataset, trial)
                inputs = [os.path.relpath(bt.hpc_results_dir(run, trial), workdir) for run in runs]
                digest = hashlib.sha256(json.dumps(runs).encode()).hexdigest()[:12]
                requests.append(
                    {
                        "dataset": dataset,
                        "trial": trial,
                        "runs": runs,
                        "workdir": workdir,
                        "local": bt.local_dataset_dir(dataset, trial),
                        "key": f"{bt.experiment}.{dataset}.{trial}.merge.{digest}",
                        "script": batch_script(
                            f"sfx-ds-{dataset}-{trial}"[:64],
                            workdir,
                            [
                                [
                                    "python",
                                    "-m",
                                    "kernels",
                                    "merge",
                                    "--results",
                                    *inputs,
                                    "--out",
                                    "merged.mtz",
                                ]
                            ],
                            env=bt.job_env,
                        ),
                    }
                )
    return requests


def record_dataset_stats(bt: Beamtime, request: dict) -> dict:
    """Store a dataset's merged statistics (from its downloaded merge_stats.json)."""
    from kernels.merging.statistics import stored_overall  # numpy: not at DAG parse time

    stats = json.loads((Path(request["local"]) / "merge_stats.json").read_text())
    with ResultsDB(bt.results_db) as db:
        dataset_id = db.ensure_dataset(
            bt.experiment, request["dataset"], bt.datasets[request["dataset"]]
        )
        trial_id = db.get_trial(request["trial"])["id"]
        db.record_merge_stats(
            trial_id, stored_overall(stats), stats.get("shells", []), dataset_id=dataset_id
        )
    return {
        "dataset": request["dataset"],
        "trial": request["trial"],
        "runs": request["runs"],
        **{k: stats.get("overall", {}).get(k) for k in ("completeness", "cc_half", "multiplicity")},
    }
