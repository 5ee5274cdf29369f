"""A trial's parameters as the user sees them: the table of keys, the UI help, the validation.

Everything is generated from the kernels' own definition (:class:`kernels.pipeline.ProcessingParams`:
its sections, their fields, defaults and inline comments), so the documentation cannot drift.
The one exception is :data:`PARAMETER_KEYS`, the keys line of the UI help: DAG files are parsed
by every task and the kernels take 1-2 s to import on a loaded machine, so it is a constant that
a test compares with :func:`parameter_keys_help`.
"""

from __future__ import annotations

import dataclasses
import inspect
import re

# the sections and keys of ProcessingParams, as parameter_keys_help() writes them (a test checks)
PARAMETER_KEYS = "spotfinder: snr, min_photons, min_pix, max_pix, window, ring_width_px, edge, sample_stride; hitfinder: min_spots; crystal: a, b, c, alpha, beta, gamma, space_group; indexing: max_difference, neighbours, max_hypothesis_spots, length_tolerance, lattice_tolerance, min_indexed, min_indexed_fraction; refinement: iterations, outlier_px, max_rmsd_px, min_spots, refine_cell, max_cell_change; integration: d_min, mosaicity_deg, bandwidth, domain_size_a, min_partiality, signal_radius, background_inner, background_outer, background_clip"

_FIELD_COMMENT = re.compile(r"^\s*(\w+)\s*:[^=]+=[^#]*#\s*(.+?)\s*$")


def _comments(cls) -> dict[str, str]:
    """Field name -> its inline comment in the class source (the field's meaning)."""
    return {
        m[1]: m[2]
        for line in inspect.getsource(cls).splitlines()
        if (m := _FIELD_COMMENT.match(line))
    }


def _value_range(default) -> str:
    if isinstance(default, str):
        return "text"
    return "integer ≥ 0" if isinstance(default, int) else "number ≥ 0"


def parameter_table() -> list[dict]:
    """One row per trial parameter: ``section``, ``key``, ``meaning``, ``default``, ``range``.

    ``meaning`` is the field's comment in the kernels' source (empty where it has none);
    ``range`` is what :meth:`ProcessingParams.from_dict` accepts for it.
    """
    from kernels.pipeline import ProcessingParams  # numpy, h5py: only when the table is asked for

    rows = []
    for section in dataclasses.fields(ProcessingParams):
        defaults = getattr(ProcessingParams(), section.name)
        comments = _comments(type(defaults))
        for field in dataclasses.fields(defaults):
            default = getattr(defaults, field.name)
            rows.append(
                {
                    "section": section.name,
                    "key": field.name,
                    "meaning": comments.get(field.name, ""),
                    "default": default,
                    "range": _value_range(default),
                }
            )
    return rows


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
        f"keys: {PARAMETER_KEYS}"
    )


def validated_trial_params(trial_params) -> dict:
    """The trial's complete parameters (defaults filled in), or ValueError naming what is wrong."""
    from kernels.pipeline import ParamsError, ProcessingParams

    if not isinstance(trial_params, dict):
        raise ValueError(f"trial_params must be a JSON object, got {trial_params!r}")
    try:
        return ProcessingParams.from_dict(trial_params).to_dict()
    except ParamsError as exc:
        raise ValueError(f"trial_params: {exc}") from None
