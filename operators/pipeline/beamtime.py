"""The beamtime's settings, from the Airflow Variable ``sfxflow_beamtime`` (JSON).

One place says where the experiment lives on both sides, how runs move, which results DB and
which default trial. DAG files read it at parse time through :func:`operators.settings.load_beamtime`
(cheap: environment-backed variables, e.g. ``AIRFLOW_VAR_SFXFLOW_BEAMTIME``). Nothing secret
belongs in it. This module imports no Airflow: the settings are testable without it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from operators.pipeline.job_script import check_name

VARIABLE = "sfxflow_beamtime"
REPO_VAR = Path(__file__).resolve().parent.parent / "var"


SPLIT_PATTERN = re.compile(r"([A-Za-z_][A-Za-z0-9_]{0,63})(=[-+0-9.eE]+(,[-+0-9.eE]+)+)?")


def check_splits(dataset: str, splits, datasets: dict) -> None:
    """A dataset's splits are ``TAG`` or ``TAG=EDGE,EDGE,...``, one per tag, of a known dataset
    (the merge job checks the edges further: numbers, increasing)."""
    where = f"{VARIABLE}: dataset_splits[{dataset!r}]"
    if dataset not in datasets:
        raise ValueError(f"{where}: no such dataset (known: {sorted(datasets)})")
    if not isinstance(splits, list) or not all(isinstance(s, str) for s in splits):
        raise ValueError(f"{where} must be a list of splits such as 'laser_on'")
    for split in splits:
        if not SPLIT_PATTERN.fullmatch(split):
            raise ValueError(f"{where}: {split!r} is not TAG or TAG=EDGE,EDGE,... (e.g. laser_on)")
    tags = [split_tag(split) for split in splits]
    if len(set(tags)) != len(tags):
        raise ValueError(f"{where}: a tag split twice in {splits}")


def split_tag(split: str) -> str:
    """The per-event tag a split (``TAG`` or ``TAG=EDGES``) is on."""
    return split.partition("=")[0]


@dataclass(frozen=True)
class Beamtime:
    """Settings of one beamtime.

    Attributes
    ----------
    experiment : name of the experiment (also the results DB's experiment)
    exp_dir : experiment folder on the beamline side (``runs/``, ``results/``, ``calib/``)
    state_dir : folder for sfxflow's own state (ledger of emitted runs)
    machine : compute system at the HPC center (SF API machine name)
    hpc_dir : facility path of the experiment at the center; runs land in ``hpc_dir/runs``
    transfer_source, transfer_dest : the experiment folder as the transfer sees it on the beamline
        and at the center: ``root://`` URLs for XRootD third-party copy, or plain directories for
        the local-copy fallback; runs move from ``<source>/runs/<run>`` to ``<dest>/runs/<run>``
    results_db : results DB URL (``sqlite:///...`` or ``mysql://user@host/db``, no password)
    transfer_parallel_files : files of one run in flight at once (a 1000-image run's 9 files
        took 9.1 s with 4 and 11.2 s with 8: each XRootD pull costs at least one 2.5 s client
        poll, and many concurrent pulls stall)
    ranks : MPI ranks of an analysis job
    mpiexec : MPI launcher at the center (``srun`` under Slurm, ``mpiexec`` elsewhere)
    job_env : environment exported by every job script (site settings, never secrets)
    trial, trial_params : the trial applied automatically to new runs
    run_tags : tags given to every new run (e.g. the sample in the beam)
    datasets : dataset name -> tags; a dataset is every run carrying all of its tags, re-merged
        per trial whenever one of its runs is published
    dataset_splits : dataset name -> per-event splits its merge also makes, each ``TAG`` (one
        merge per value, e.g. ``laser_on``) or ``TAG=EDGE,EDGE,...`` (delay bins), with the
        isomorphous differences between the sets (``merge --split``; the tags come from the
        runs' files)
    live_timeout : seconds without a new chunk (and no run marker) after which a live run is
        flagged stalled (its DAQ stopped): its job ends and what it got is merged
    live_linger_seconds : how long a live run's transfer task keeps looking for the next chunk
        in its worker before it defers (chunks closing within it skip a deferral round trip)
    reprocess_cron : data intervals of ``sfx_reprocess`` (a backfill interval reprocesses the runs
        concluded in it; each interval's scheduled run is a sweep for runs without a pipeline)
    """

    experiment: str = "demo"
    exp_dir: str = str(REPO_VAR / "demo" / "experiment")
    state_dir: str = str(REPO_VAR / "demo" / "state")
    machine: str = "perlmutter"
    hpc_dir: str = "/pscratch/sd/s/sfxflow/demo"
    transfer_source: str = str(REPO_VAR / "demo" / "experiment")
    transfer_dest: str = str(
        REPO_VAR / "demo" / "hpc" / "pscratch" / "sd" / "s" / "sfxflow" / "demo"
    )
    results_db: str = f"sqlite:///{REPO_VAR / 'demo' / 'results.db'}"
    transfer_parallel_files: int = 4
    ranks: int = 2
    mpiexec: str = "mpiexec"
    job_env: dict = field(default_factory=dict)
    trial: str = "default"
    trial_params: dict = field(default_factory=dict)
    run_tags: list = field(default_factory=lambda: ["lysozyme"])
    datasets: dict = field(default_factory=lambda: {"lysozyme": ["lysozyme"]})
    dataset_splits: dict = field(default_factory=dict)
    reprocess_cron: str = "0 * * * *"
    event_source: str = "folder"
    live_timeout: float = 120.0
    live_linger_seconds: float = 30.0
    facility_poll_seconds: float = 30.0
    job_poll: tuple = (1.0, 1.5, 30.0)
    sfapi_conn_id: str = "sfapi_default"

    def __post_init__(self):
        check_name("experiment", self.experiment)
        check_name("trial", self.trial)
        for name in [*self.run_tags, *self.datasets]:
            check_name("tag or dataset", name)
        for dataset, splits in self.dataset_splits.items():
            check_splits(dataset, splits, self.datasets)

    @classmethod
    def from_dict(cls, d: dict) -> Beamtime:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(
                f"{VARIABLE}: unknown setting(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        return cls(**{**d, "job_poll": tuple(d.get("job_poll", cls.job_poll))})

    @classmethod
    def from_json(cls, raw: str | None) -> Beamtime:
        """Settings from the Variable's JSON text; the defaults when it is unset or empty."""
        return cls.from_dict(json.loads(raw)) if raw else cls()

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    def hpc_run_dir(self, run: str) -> str:
        return f"{self.hpc_dir}/runs/{run}"

    def hpc_results_dir(self, run: str, trial: str) -> str:
        return f"{self.hpc_dir}/results/{trial}/{run}"

    def local_results_dir(self, run: str, trial: str) -> str:
        return f"{self.exp_dir}/results/{trial}/{run}"

    def hpc_dataset_dir(self, dataset: str, trial: str) -> str:
        return f"{self.hpc_dir}/datasets/{dataset}/{trial}"

    def local_dataset_dir(self, dataset: str, trial: str) -> str:
        return f"{self.exp_dir}/datasets/{dataset}/{trial}"
