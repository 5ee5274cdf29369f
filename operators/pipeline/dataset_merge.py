"""Dataset merges: which datasets a published run belongs to, and their merge jobs."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from kernels.resultsdb import ResultsDB
from operators.pipeline.beamtime import Beamtime, split_tag
from operators.pipeline.job_script import batch_script

MERGE_FILES = ["merged.mtz", "merge_stats.json"]


def split_stats_file(split: str) -> str:
    """Where a dataset's split writes its ``split_stats.json``, relative to the dataset folder."""
    return f"splits/{split_tag(split)}/split_stats.json"


def merge_commands(inputs: list[str], splits: list[str]) -> list[list[str]]:
    """The dataset's merge, then one ``merge --split`` per split (its files in ``splits/<tag>/``)."""
    merge = ["python", "-m", "kernels", "merge", "--results", *inputs]
    return [
        [*merge, "--out", "merged.mtz"],
        *(
            [*merge, "--out", f"splits/{split_tag(split)}/merged.mtz", "--split", split]
            for split in splits
        ),
    ]


def dataset_merge_requests(bt: Beamtime, published: list[dict]) -> list[dict]:
    """One merge request per (dataset, trial) touched by the published runs.

    A dataset is merged from every run carrying all its tags that has results for the trial,
    and split by each of its ``dataset_splits``. The job key names the exact set of runs (and
    the splits, when there are some), so the same set is never merged twice while a grown set
    is.
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
                splits = list(bt.dataset_splits.get(dataset, []))
                named = [runs, splits] if splits else runs  # keys without splits stay as before
                digest = hashlib.sha256(json.dumps(named).encode()).hexdigest()[:12]
                requests.append(
                    {
                        "dataset": dataset,
                        "trial": trial,
                        "runs": runs,
                        "splits": splits,
                        "files": MERGE_FILES + [split_stats_file(split) for split in splits],
                        "manifests": [split_stats_file(split) for split in splits],
                        "workdir": workdir,
                        "local": bt.local_dataset_dir(dataset, trial),
                        "key": f"{bt.experiment}.{dataset}.{trial}.merge.{digest}",
                        "script": batch_script(
                            f"sfx-ds-{dataset}-{trial}"[:64],
                            workdir,
                            merge_commands(inputs, splits),
                            env=bt.job_env,
                        ),
                    }
                )
    return requests


def split_summary(split_stats: dict) -> dict:
    """What a dataset merge keeps of one split (its split_stats.json): each set's images, CC½
    and completeness; each difference's Riso and CCiso against the reference, overall and per
    shell (the form :meth:`ResultsDB.record_split_stats` stores)."""
    return {
        "reference": split_stats["split"]["reference"],
        "images_in_no_set": split_stats["images_in_no_set"],
        "sets": {
            label: {
                "images": s["images"],
                **{k: s.get("overall", {}).get(k) for k in ("cc_half", "completeness")},
            }
            for label, s in split_stats["sets"].items()
        },
        "differences": {
            label: {"riso": d["riso"], "cc_iso": d["cc_iso"], "shells": d["shells"]}
            for label, d in split_stats["differences"].items()
        },
    }


def record_dataset_stats(bt: Beamtime, request: dict) -> dict:
    """Store a dataset's merged statistics (from its downloaded merge_stats.json) and each of
    its splits' (from their downloaded split_stats.json); return what they gave."""
    from kernels.merging.statistics import stored_overall  # numpy: not at DAG parse time

    local = Path(request["local"])
    stats = json.loads((local / "merge_stats.json").read_text())
    splits = {
        split_tag(split): split_summary(json.loads((local / split_stats_file(split)).read_text()))
        for split in request.get("splits", [])
    }
    with ResultsDB(bt.results_db) as db:
        dataset_id = db.ensure_dataset(
            bt.experiment, request["dataset"], bt.datasets[request["dataset"]]
        )
        trial_id = db.get_trial(request["trial"])["id"]
        db.record_merge_stats(
            trial_id, stored_overall(stats), stats.get("shells", []), dataset_id=dataset_id
        )
        db.record_split_stats(trial_id, dataset_id, splits)  # splits no longer named: gone
    return {
        "dataset": request["dataset"],
        "trial": request["trial"],
        "runs": request["runs"],
        **{k: stats.get("overall", {}).get(k) for k in ("completeness", "cc_half", "multiplicity")},
        "splits": splits,
    }
