"""The first hour of a beamtime (``sfx_setup``), as plain functions: chosen runs indexed
cell-free, the cell determined from them, the detector geometry refined on their spots, the space
group from the systematic absences, and a new trial registered with the cell and space group
found and the refined geometry.

Four batch jobs in one folder at the center (``<hpc_dir>/setup/<trial>``): ``cell-index`` of
each run into ``<run>/`` (cellfree.csv, spots.h5, run.geom), ``cell`` over them (cell.json, the
histograms), ``refine-geometry`` on every run's spots from the first run's detector (refined.geom,
its report and residual map); these outputs come back to ``<exp_dir>/setup/<trial>/``. The fourth,
built from them, processes the runs with the found cell and geometry in the lattice's symmorphic
group into ``absences/<run>/``, merges them and ranks the lattice's groups by the merge's
absences (``absences.json``), which comes back too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from kernels.cell.absences import axis_settings, symmorphic_group
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
ABSENCES_FILES = ["absences.json", "absences/merge_stats.json"]
ABSENCES_PARAMS = "absences_params.json"


KERNELS = ["python", "-m", "kernels"]


class SetupRequestError(ValueError):
    """A setup request refused before any job starts; the message says what to change."""


def hpc_setup_dir(bt: Beamtime, trial: str) -> str:
    return f"{bt.hpc_dir}/setup/{trial}"


def local_setup_dir(bt: Beamtime, trial: str) -> str:
    return f"{bt.exp_dir}/setup/{trial}"


def setup_scripts(bt: Beamtime, trial: str, runs: list[str]) -> dict[str, str]:
    """The three job scripts (``<step>_script``), paths relative to the setup folder."""
    workdir = hpc_setup_dir(bt, trial)
    index = [
        [*KERNELS, "cell-index", "--run", os.path.relpath(bt.hpc_run_dir(run), workdir), "--out", run]
        for run in runs
    ]  # fmt: skip
    cell = [[*KERNELS, "cell", "--results", *runs, "--out", "."]]
    spots = [f"{run}/spots.h5" for run in runs]
    geometry = [[*KERNELS, "refine-geometry", "--geometry", f"{runs[0]}/run.geom", "--spots",
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
    if chosen not in axis_settings(candidates):  # P 21 2 2: a <= b <= c need not be standard
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


def found_trial_params(bt: Beamtime, local: Path, space_group: str | None) -> dict:
    """`setup_trial_params` from the downloaded cell.json, refined.geom and its report.

    Raises
    ------
    SetupRequestError
        A refined.geom that does not parse (FILE:LINE), or a cell that makes no valid trial.
    """
    from kernels.io.geom import GeometryFileError, read_geom

    cell_report = json.loads((local / "cell.json").read_text())
    geometry = json.loads((local / "geometry_refinement.json").read_text())
    try:
        read_geom(local / "refined.geom")  # a broken file is named with its line here
    except GeometryFileError as exc:
        raise SetupRequestError(f"the refined geometry makes no valid trial: {exc}") from None
    geom_text = (local / "refined.geom").read_text()
    scale = geometry.get("cell_scale", 1.0)  # the cell found through the old geometry's distance
    return setup_trial_params(bt.trial_params, cell_report, space_group, geom_text, scale)


def absences_script(bt: Beamtime, info: dict) -> dict:
    """The fourth job (``absences_script``, ``absences_key``), from the downloaded outputs: the
    runs processed with the found cell and refined geometry in the lattice's symmorphic group
    (every image: the cell-free indexing went through them all already, at more cost per hit,
    and the few axial reflections that decide want every observation), merged, and ranked."""
    local = Path(info["local_setup"])
    bravais = json.loads((local / "cell.json").read_text())["main"]["bravais"]
    params = found_trial_params(bt, local, symmorphic_group(bravais))
    workdir, trial = info["hpc_setup"], info["trial"]
    runs = [r["run"] for r in info["runs"]]
    options = ["--params", ABSENCES_PARAMS]
    process = [
        [*KERNELS, "process", "--run", os.path.relpath(bt.hpc_run_dir(run), workdir),
         "--out", f"absences/{run}", *options, "--trial", trial]
        for run in runs
    ]  # fmt: skip
    merged = "absences/merged.mtz"
    merge = [*KERNELS, "merge", "--results", *(f"absences/{r}" for r in runs), "--out", merged]
    rank = [*KERNELS, "absences", "--cell", "cell.json", "--merged", merged, "--out"]
    script = batch_script(
        f"sfx-setup-absences-{trial}"[:64], workdir, [*process, [*merge, *options], [*rank, ABSENCES_FILES[0]]],
        files={ABSENCES_PARAMS: json.dumps(params)}, env=bt.job_env,
    )  # fmt: skip
    return {"absences_script": script, "absences_key": f"{bt.experiment}.setup.{trial}.absences"}


def space_group_choice(cell_report: dict, absences: dict | None, space_group: str | None) -> tuple:
    """The trial's space group and why: the user's, else the absences' choice, else (they
    cannot decide, or their job brought nothing back: `absences` None) the lattice's first
    candidate."""
    if space_group:
        return space_group, "given with the request"
    fallback = cell_report["main"]["space_groups"][0]
    if absences is None:
        return fallback, (
            "the lattice's first candidate: the absences job brought back no "
            f"{ABSENCES_FILES[0]} (see the absences task's log)"
        )
    choice = absences["choice"]
    if choice["space_group"]:
        return choice["space_group"], f"by the absences: {choice['reason']}"
    return (
        fallback,
        f"the lattice's first candidate: the absences cannot decide ({choice['reason']})",
    )


def register_setup_trial(bt: Beamtime, info: dict, space_group: str | None) -> dict:
    """Register the new trial from the downloaded outputs; what it holds, for the UI and a
    reprocess: trial, trial_params, trial_id, the cell's lattice, the space group and why, and
    the refined geometry.

    Raises
    ------
    SetupRequestError
        Setup files that did not come back (the cell or geometry job failed), a refined.geom
        that does not parse (FILE:LINE), or a cell that makes no valid trial.
    """
    from kernels.resultsdb import ResultsDB

    local = Path(info["local_setup"])
    missing = [name for name in SETUP_FILES if not (local / name).is_file()]
    if missing:  # the cell or geometry jobs failed: their tasks say why
        raise SetupRequestError(
            f"nothing to register: {', '.join(missing)} did not come back to {local}"
        )
    cell_report = json.loads((local / "cell.json").read_text())
    found = local / ABSENCES_FILES[0]  # absent when the absences job failed: the trial is kept
    absences = json.loads(found.read_text()) if found.is_file() else None
    chosen, why = space_group_choice(cell_report, absences, space_group)
    params = found_trial_params(bt, local, chosen)
    geometry = json.loads((local / "geometry_refinement.json").read_text())
    with ResultsDB(bt.results_db) as db:
        trial_id = db.ensure_trial(info["trial"], params)
    return {
        "trial": info["trial"],
        "trial_id": trial_id,
        "trial_params": params,
        "bravais": cell_report["main"]["bravais"],
        "space_group": chosen,
        "space_group_reason": why,
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
