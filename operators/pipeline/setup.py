"""The first hour of a beamtime (``sfx_setup``), as plain functions: chosen runs indexed
cell-free, the cell determined from them, the detector geometry refined on their spots, and a
new trial registered with the cell and space group found and the refined geometry.

Three batch jobs in one folder at the center (``<hpc_dir>/setup/<trial>``): ``cell-index`` of
each run into ``<run>/`` (cellfree.csv, spots.h5, run.geom), ``cell`` over them (cell.json, the
histograms), ``refine-geometry`` on every run's spots from the first run's detector (refined.geom,
its report and residual map). The outputs come back to ``<exp_dir>/setup/<trial>/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from operators.pipeline.beamtime import Beamtime
from operators.pipeline.job_script import batch_script, check_name
from operators.pipeline.run import trial_name_suggestion

SETUP_STEPS = ("cell_index", "cell", "geometry")
SETUP_FILES = [
    "cell.json",
    "cell_histograms.png",
    "refined.geom",
    "geometry_refinement.json",
    "residual_map.png",
]


class SetupRequestError(ValueError):
    """A setup request refused before any job starts; the message says what to change."""


def hpc_setup_dir(bt: Beamtime, trial: str) -> str:
    return f"{bt.hpc_dir}/setup/{trial}"


def local_setup_dir(bt: Beamtime, trial: str) -> str:
    return f"{bt.exp_dir}/setup/{trial}"


def setup_scripts(bt: Beamtime, trial: str, runs: list[str]) -> dict[str, str]:
    """The three job scripts (``<step>_script``), paths relative to the setup folder."""
    workdir = hpc_setup_dir(bt, trial)
    kernels = ["python", "-m", "kernels"]
    index = [
        [*kernels, "cell-index", "--run", os.path.relpath(bt.hpc_run_dir(run), workdir), "--out", run]
        for run in runs
    ]  # fmt: skip
    cell = [[*kernels, "cell", "--results", *runs, "--out", "."]]
    spots = [f"{run}/spots.h5" for run in runs]
    geometry = [[*kernels, "refine-geometry", "--geometry", f"{runs[0]}/run.geom", "--spots",
                 *spots, "--cell", "cell.json", "--out", "."]]  # fmt: skip
    commands = {"cell_index": index, "cell": cell, "geometry": geometry}
    return {
        f"{step}_script": batch_script(
            f"sfx-setup-{step}-{trial}"[:64], workdir, commands[step], env=bt.job_env
        )
        for step in SETUP_STEPS
    }


def prepare_setup(bt: Beamtime, runs_text: str | None, trial: str) -> dict:
    """Check a setup request and build its jobs: the runs (each existing and concluded, with
    the files their markers list, for the transfer), the job scripts and keys, the folders.

    Raises
    ------
    SetupRequestError
        A bad trial name, no runs, a malformed range, runs missing or not concluded, or a trial
        name already registered.
    """
    from kernels.io.marker import read_marker
    from kernels.resultsdb import ResultsDB
    from operators.pipeline.reprocess import ReprocessRequestError, runs_to_reprocess

    try:
        check_name("trial", trial)
        runs = runs_to_reprocess(bt.exp_dir, runs_text, manual=True)
    except (ValueError, ReprocessRequestError) as exc:
        raise SetupRequestError(str(exc)) from None
    if not runs:
        raise SetupRequestError('no runs given: name the runs to set up from, e.g. "1-3"')
    with ResultsDB(bt.results_db) as db:
        taken = {t["name"] for t in db.trials()}
    if trial in taken:
        raise SetupRequestError(
            f"trial {trial} exists already: pick a new trial name, "
            f"e.g. {trial_name_suggestion(trial, taken)}"
        )
    return {
        "trial": trial,
        "runs": [
            {"run": run, "files": read_marker(Path(bt.exp_dir) / "runs" / run).to_dict()["files"]}
            for run in runs
        ],
        "hpc_setup": hpc_setup_dir(bt, trial),
        "local_setup": local_setup_dir(bt, trial),
        **{f"{step}_key": f"{bt.experiment}.setup.{trial}.{step}" for step in SETUP_STEPS},
        **setup_scripts(bt, trial, runs),
    }


def setup_trial_params(
    base: dict, cell_report: dict, space_group: str | None, geom_text: str = "", scale: float = 1
) -> dict:
    """The trial's full parameters: ``base`` with the crystal section set to the conventional
    cell found, its lengths times the geometry refinement's cell ``scale``, and ``space_group``
    (by default the first candidate of the lattice), and the detector section to the refined
    geometry's text ``geom_text`` (empty: the runs' own).

    Raises
    ------
    SetupRequestError
        A space group that is not among the lattice's candidates (they are named).
    """
    from kernels.stages.pipeline import ParamsError, ProcessingParams

    main = cell_report["main"]
    candidates = main["space_groups"]
    chosen = space_group or candidates[0]
    if chosen not in candidates:
        raise SetupRequestError(
            f"space group {chosen!r} does not fit the {main['bravais']} cell found; "
            f"its candidates: {', '.join(candidates)}"
        )
    names = ("a", "b", "c", "alpha", "beta", "gamma")
    cell = [v * scale for v in main["cell"][:3]] + list(main["cell"][3:])
    crystal = {**dict(zip(names, cell)), "space_group": chosen}
    try:
        detector = {"geom": geom_text}
        return ProcessingParams.from_dict(
            {**base, "crystal": crystal, "detector": detector}
        ).to_dict()
    except ParamsError as exc:
        raise SetupRequestError(f"the setup's results make no valid trial: {exc}") from None


def register_setup_trial(bt: Beamtime, info: dict, space_group: str | None) -> dict:
    """Register the new trial from the downloaded outputs; what it holds, for the UI and a
    reprocess: trial, trial_params, trial_id, the cell's lattice and the refined geometry.

    Raises
    ------
    SetupRequestError
        A refined.geom that does not parse (FILE:LINE), or a cell that makes no valid trial.
    """
    from kernels.io.geom import GeometryFileError, read_geom
    from kernels.resultsdb import ResultsDB

    local = Path(info["local_setup"])
    cell_report = json.loads((local / "cell.json").read_text())
    geometry = json.loads((local / "geometry_refinement.json").read_text())
    try:
        read_geom(local / "refined.geom")  # a broken file is named with its line here
    except GeometryFileError as exc:
        raise SetupRequestError(f"the refined geometry makes no valid trial: {exc}") from None
    geom_text = (local / "refined.geom").read_text()
    scale = geometry.get("cell_scale", 1.0)  # the cell found through the old geometry's distance
    params = setup_trial_params(bt.trial_params, cell_report, space_group, geom_text, scale)
    with ResultsDB(bt.results_db) as db:
        trial_id = db.ensure_trial(info["trial"], params)
    return {
        "trial": info["trial"],
        "trial_id": trial_id,
        "trial_params": params,
        "bravais": cell_report["main"]["bravais"],
        "geometry": str(local / "refined.geom"),
        "rms_px": [geometry["rms_before_px"], geometry["rms_after_px"]],
    }


def reprocess_conf(registered: dict, runs_text: str) -> dict:
    """The ``sfx_reprocess`` conf that reprocesses ``runs_text`` with the new trial."""
    return {
        "trial": registered["trial"],
        "trial_params": registered["trial_params"],
        "runs": runs_text,
    }
