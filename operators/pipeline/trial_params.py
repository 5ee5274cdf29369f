"""A trial's parameters as the user sees them: the table of keys, the UI help, the validation.

Everything comes from the kernels' own definition (:class:`kernels.stages.pipeline.ProcessingParams`
and the meaning and range beside each field, ``PARAM_INFO``), so the documentation cannot drift.
"""

from __future__ import annotations

from kernels.stages.params_table import parameter_rows
from kernels.stages.pipeline import ParamsError, ProcessingParams


def parameter_table() -> list[dict]:
    """One row per trial parameter: ``section``, ``key``, ``meaning``, ``default``, ``range``
    (the kernels' own table, :func:`kernels.stages.params_table.parameter_rows`)."""
    return parameter_rows()


def parameter_keys_help() -> str:
    """The sections and keys a trial may set, in one line."""
    sections: dict[str, list[str]] = {}
    for row in parameter_table():
        sections.setdefault(row["section"], []).append(row["key"])
    return "; ".join(f"{section}: {', '.join(keys)}" for section, keys in sections.items())


def trial_params_description() -> str:
    """The help of the ``trial_params`` Param in the UI: an example, then every key."""
    return (
        'processing parameters by section, e.g. {"spotfinder": {"snr": 5}}; '
        f"keys: {parameter_keys_help()}"
    )


def validated_trial_params(trial_params) -> dict:
    """The trial's complete parameters (defaults filled in), or ValueError naming what is wrong."""
    if not isinstance(trial_params, dict):
        raise ValueError(f"trial_params must be a JSON object, got {trial_params!r}")
    try:
        return ProcessingParams.from_dict(trial_params).to_dict()
    except ParamsError as exc:
        raise ValueError(f"trial_params: {exc}") from None
