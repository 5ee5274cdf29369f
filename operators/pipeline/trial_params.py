"""A trial's parameters as the user sees them: the table of keys, the UI help, the validation.

Everything comes from the kernels' own definition (:class:`kernels.stages.pipeline.ProcessingParams`
and the meaning and range beside each field, ``PARAM_INFO``), so the documentation cannot drift.
The one exception is :data:`PARAMETER_KEYS`, the keys line of the UI help: DAG files are parsed
by every task and the kernels take 1-2 s to import on a loaded machine, so it is a constant that
a test compares with :func:`parameter_keys_help`.
"""

from __future__ import annotations

# the sections and keys of ProcessingParams, as parameter_keys_help() writes them (a test checks)
PARAMETER_KEYS = "spotfinder: snr, min_photons, min_pix, max_pix, window, ring_width_px, edge, sample_stride, min_separation; hitfinder: min_spots; crystal: a, b, c, alpha, beta, gamma, space_group; indexing: max_difference, neighbours, max_hypothesis_spots, length_tolerance, lattice_tolerance, min_indexed, min_indexed_fraction, fallback_spots, fallback_max_difference, fallback_length_tolerance; refinement: iterations, outlier_px, max_rmsd_px, min_spots, refine_cell, max_cell_change, min_explained_fraction, ewald_prediction; integration: d_min, mosaicity_deg, bandwidth, domain_size_a, min_partiality, signal_radius, background_inner, background_outer, background_clip, adaptive, signal_sigmas, background_width, min_held, pool_evidence; detector: geom"


def parameter_table() -> list[dict]:
    """One row per trial parameter: ``section``, ``key``, ``meaning``, ``default``, ``range``
    (the kernels' own table, :func:`kernels.stages.params_table.parameter_rows`)."""
    from kernels.stages.params_table import parameter_rows  # numpy, h5py: only when asked for

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
        f"keys: {PARAMETER_KEYS}"
    )


def validated_trial_params(trial_params) -> dict:
    """The trial's complete parameters (defaults filled in), or ValueError naming what is wrong."""
    from kernels.stages.pipeline import ParamsError, ProcessingParams

    if not isinstance(trial_params, dict):
        raise ValueError(f"trial_params must be a JSON object, got {trial_params!r}")
    try:
        return ProcessingParams.from_dict(trial_params).to_dict()
    except ParamsError as exc:
        raise ValueError(f"trial_params: {exc}") from None
