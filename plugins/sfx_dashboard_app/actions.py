"""The dashboard's changes as pure functions: checked requests in, new settings / DAG conf out.

Names follow the pipeline's own rule (:func:`operators.pipeline.job_script.check_name`): a tag or
dataset the pipeline would refuse is refused here, before anything changes, with the reason.
"""

from __future__ import annotations

import json

from kernels.io.marker import RUN_NAME
from operators.pipeline.beamtime import VARIABLE, Beamtime
from operators.pipeline.job_script import check_name


class ActionError(ValueError):
    """A request the dashboard refuses before changing anything; the message says why."""


def checked_names(kind: str, names: list[str]) -> list[str]:
    """``names`` sorted and unique, each a valid pipeline name; at least one."""
    if not isinstance(names, list) or not names:
        raise ActionError(f"give at least one {kind}")
    try:
        return sorted({check_name(kind, name) for name in names})
    except ValueError as exc:
        raise ActionError(str(exc)) from None


def loaded_settings(raw: str | None) -> dict:
    """The Variable's JSON text as a dict (an unset Variable is an empty object: the defaults)."""
    try:
        settings = json.loads(raw) if raw else {}
    except json.JSONDecodeError as exc:
        raise ActionError(f"Variable {VARIABLE} is not JSON: {exc}") from None
    if not isinstance(settings, dict):
        raise ActionError(f"Variable {VARIABLE} is not a JSON object")
    return settings


def checked_settings(settings: dict) -> str:
    """``settings`` as the Variable's JSON text, once the pipeline can read them."""
    try:
        Beamtime.from_dict(settings)
    except (TypeError, ValueError) as exc:
        raise ActionError(f"Variable {VARIABLE} would not be readable: {exc}") from None
    return json.dumps(settings, indent=2)


def settings_with_dataset(
    raw: str | None, dataset: str, tags: list[str], splits: list[str] | None = None
) -> str:
    """The Variable's JSON text with dataset ``dataset`` = every run carrying all ``tags``,
    split per event by ``splits`` (``laser_on``, ``delay_ns=0,500,2000``; none: no splits).

    Only ``datasets`` (and ``dataset_splits``) change; every other setting stays as written (an
    unset Variable starts from an empty object, i.e. the defaults). The result is checked as
    the pipeline reads it.
    """
    check = checked_names("tag", tags)
    settings = loaded_settings(raw)
    datasets = dict(settings.get("datasets", Beamtime().datasets))
    name = checked_names("dataset", [dataset])[0]
    datasets[name] = check
    new = {**settings, "datasets": datasets}
    dataset_splits = dict(settings.get("dataset_splits", {}))
    dataset_splits.pop(name, None)
    if splits:
        dataset_splits[name] = list(splits)
    if dataset_splits or "dataset_splits" in settings:
        new["dataset_splits"] = dataset_splits
    return checked_settings(new)


def settings_without_dataset(raw: str | None, dataset: str) -> str | None:
    """The Variable's JSON text without dataset ``dataset`` (and its splits); None when it does
    not define it (then only the results DB knows the dataset). Every other setting stays as
    written."""
    settings = loaded_settings(raw)
    datasets = dict(settings.get("datasets", Beamtime().datasets))
    if datasets.pop(dataset, None) is None:
        return None
    new = {**settings, "datasets": datasets}
    if dataset in settings.get("dataset_splits", {}):
        new["dataset_splits"] = {
            k: v for k, v in settings["dataset_splits"].items() if k != dataset
        }
    return checked_settings(new)


def settings_with_default_trial(raw: str | None, trial: dict) -> str:
    """The Variable's JSON text with ``trial`` (a results-DB trial: name, version, params) as
    the trial applied to new runs and by the scheduled reprocess sweep.

    Raises
    ------
    ActionError
        A trial version above 1: the pipeline registers its default trial as version 1, so
        it would meet other parameters under that name.
    """
    if trial["version"] != 1:
        raise ActionError(
            f"trial {trial['name']} version {trial['version']} cannot be the default: the "
            "pipeline registers the default trial as version 1; register these parameters "
            "under a new trial name (e.g. by a reprocess with a new trial) and choose that one"
        )
    settings = loaded_settings(raw)
    return checked_settings({**settings, "trial": trial["name"], "trial_params": trial["params"]})


def run_numbers(names: list[str]) -> str:
    """The ``runs`` conf of ``sfx_reprocess`` for these run names: ``"1,7"``."""
    if not names:
        raise ActionError("choose at least one run to reprocess")
    odd = [name for name in names if not RUN_NAME.match(name)]
    if odd:
        raise ActionError(f"cannot reprocess {odd!r}: only runs named like r0001 can be")
    return ",".join(str(int(name[1:])) for name in sorted(set(names), key=lambda n: int(n[1:])))


def reprocess_conf(run_names: list[str], trial: str, trial_params) -> dict:
    """The checked conf of an ``sfx_reprocess`` DAG run (the DAG checks it again itself)."""
    from operators.pipeline.trial_params import validated_trial_params  # loads the kernels

    runs = run_numbers(run_names)
    try:
        check_name("trial", trial)
        validated_trial_params(trial_params)
    except ValueError as exc:
        raise ActionError(str(exc)) from None
    return {"trial": trial, "trial_params": trial_params, "runs": runs}
