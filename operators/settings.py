"""The beamtime settings of this Airflow installation: the Variable ``sfxflow_beamtime``."""

from __future__ import annotations

from airflow.sdk import Variable

from operators.pipeline.beamtime import VARIABLE, Beamtime


def load_beamtime() -> Beamtime:
    """The active :class:`~operators.pipeline.beamtime.Beamtime` (defaults if the Variable is unset).

    Raises
    ------
    ValueError
        An unknown setting or a bad name in the Variable, naming it.
    """
    return Beamtime.from_json(Variable.get(VARIABLE, default=None))
