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
    try:
        settings = json.loads(raw) if raw else {}
    except json.JSONDecodeError as exc:
        raise ActionError(f"Variable {VARIABLE} is not JSON: {exc}") from None
    if not isinstance(settings, dict):
        raise ActionError(f"Variable {VARIABLE} is not a JSON object")
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
    try:
        Beamtime.from_dict(new)
    except (TypeError, ValueError) as exc:
        raise ActionError(f"Variable {VARIABLE} would not be readable: {exc}") from None
    return json.dumps(new, indent=2)


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
