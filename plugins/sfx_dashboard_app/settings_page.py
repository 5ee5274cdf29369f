"""The settings page: the active beamtime settings, every trial's parameters, the parameter keys.

The settings come from the Airflow Variable ``sfxflow_beamtime`` (often set in the environment,
so Admin → Variables shows nothing); the trials from the results DB; the table of keys from the
kernels' own definition (:func:`operators.pipeline.trial_params.parameter_table`).
"""

from __future__ import annotations

import dataclasses
import json

from kernels.resultsdb import DbUrlError, parse_db_url
from operators.pipeline.beamtime import VARIABLE, Beamtime
from operators.pipeline.trial_params import parameter_table

from .pages import esc, page


def active_beamtime() -> tuple[Beamtime | None, str]:
    """(settings, "") from the Variable as the pipelines read it, or (None, why not)."""
    from airflow.models.variable import Variable  # only the api-server serves this page

    try:
        return Beamtime.from_json(Variable.get(VARIABLE, default_var=None)), ""
    except ValueError as exc:
        return None, str(exc)


def settings_rows(bt: Beamtime) -> list[tuple[str, str]]:
    """(setting, value as JSON) of every setting; the results DB URL never with a password."""
    values = dataclasses.asdict(bt)
    try:
        values["results_db"] = parse_db_url(bt.results_db).redacted()
    except DbUrlError as exc:  # e.g. a password in the URL: say so, never show it
        values["results_db"] = f"refused: {exc}"
    return [(name, json.dumps(value)) for name, value in values.items()]


def _table(head: tuple[str, ...], rows) -> str:
    header = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f'<td class="name">{esc(cell)}</td>' for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{header}</tr>{body}</table>"


def settings_page(bt: Beamtime | None, problem: str, trials: list[dict]) -> str:
    """HTML of the settings page; ``trials`` carry ``name``, ``version`` and ``params``."""
    settings = (
        _table(("setting", "value"), settings_rows(bt))
        if bt is not None
        else f'<p class="muted">{esc(VARIABLE)} unreadable: {esc(problem)}</p>'
    )
    trial_tables = "".join(
        f"<h3>{esc(t['name'])} v{t['version']}</h3>"
        + _table(("section", "parameters"), ((k, json.dumps(v)) for k, v in t["params"].items()))
        for t in trials
    )
    keys = _table(
        ("section", "key", "meaning", "default", "range"),
        (
            (r["section"], r["key"], r["meaning"], r["default"], r["range"])
            for r in parameter_table()
        ),
    )
    body = (
        '<p><a href="./">← beamtime</a></p><h1>Settings</h1>'
        f"<h2>Beamtime settings (Airflow Variable {esc(VARIABLE)})</h2>{settings}"
        f"<h2>Trials</h2>{trial_tables or '<p class=muted>no trials yet</p>'}"
        f"<h2>Trial parameters</h2>{keys}"
    )
    return page("Settings", body)
