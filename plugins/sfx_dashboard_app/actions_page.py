"""HTML of the actions page: runs with their tags, datasets, the forms of the allowed changes,
and the audit log. A user without a right sees the same tables without its form; every value
goes through ``esc``."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from .pages import esc, href, page
from .permissions import EDIT_SETTINGS, REPROCESS


def runs_table(runs: list[dict], choosable: bool) -> str:
    """Runs with state and tags; a checkbox per run when the user may act on runs."""
    head = ("<th>choose</th>" if choosable else "") + "<th>run</th><th>state</th><th>tags</th>"
    rows = "".join(
        f'<tr data-run-id="{int(run["run_id"])}">'
        + (
            f'<td><input type="checkbox" name="run_id" value="{int(run["run_id"])}" '
            f'aria-label="choose {esc(run["run"])}"></td>'
            if choosable
            else ""
        )
        + f'<td class="name">{esc(run["run"])}</td><td class="name">{esc(run["state"])}</td>'
        f'<td class="name" data-field="tags">{esc(", ".join(run["tags"]))}</td></tr>'
        for run in runs
    )
    return f'<table id="action-runs"><tr>{head}</tr>{rows}</table>'


def datasets_table(datasets: list[dict]) -> str:
    rows = "".join(
        f'<tr><td class="name">{esc(d["name"])}</td><td class="name">{esc(" + ".join(d["tags"]))}</td></tr>'
        for d in datasets
    )
    return (
        f'<table id="action-datasets"><tr><th>dataset</th><th>tags (all of)</th></tr>{rows}</table>'
    )


def audit_table(entries: list[dict]) -> str:
    rows = "".join(
        "<tr>"
        f'<td class="name">{datetime.fromtimestamp(e["at"], UTC).strftime("%Y-%m-%d %H:%M:%S")} UTC</td>'
        f'<td class="name">{esc(e["username"])}</td><td class="name">{esc(e["action"])}</td>'
        f'<td class="name"><code>{esc(json.dumps(e["detail"], sort_keys=True))}</code></td>'
        f'<td class="name">{esc(e["outcome"])}</td></tr>'
        for e in entries
    )
    head = "<tr><th>when</th><th>who</th><th>action</th><th>detail</th><th>outcome</th></tr>"
    empty = "" if entries else '<p class="muted">no change made from the dashboard yet</p>'
    return f'<table id="audit">{head}{rows}</table>{empty}'


def forms(may: frozenset[str], trial: dict) -> str:
    """The forms of the changes the user may make (none for a viewer)."""
    parts = []
    if EDIT_SETTINGS in may:
        parts.append(
            '<form data-action="tag"><b>Tag the chosen runs</b> '
            '<input name="tag" required placeholder="e.g. lysozyme-b"> <button>tag</button></form>'
            '<form data-action="dataset"><b>Define a dataset</b> '
            '<input name="name" required placeholder="name"> runs carrying all of '
            '<input name="tags" required placeholder="tag1, tag2">, split per event by '
            '<input name="splits" placeholder="laser_on; delay_ns=0,500,2000"> '
            "<button>define</button></form>"
            '<form data-action="untag"><b>Take a tag off the chosen runs</b> '
            '<input name="tag" required placeholder="tag"> <button>untag</button></form>'
            '<form data-action="delete-dataset"><b>Delete a dataset</b> '
            '<input name="name" required placeholder="name"> <button>delete</button></form>'
            '<form data-action="default-trial"><b>Make trial '
            f"{esc(trial['name'])} v{int(trial['version'])} the experiment's default</b> "
            f'<input type="hidden" name="trial_id" value="{int(trial["id"])}"> '
            "<button>make default</button></form>"
        )
    if REPROCESS in may:
        params = esc(json.dumps(trial["params"], indent=1, sort_keys=True))
        parts.append(
            '<form data-action="reprocess"><b>Reprocess the chosen runs</b> with trial '
            f'<input name="trial" required value="{esc(trial["name"])}"><br>'
            f'trial parameters (JSON)<br><textarea name="trial_params" rows="6" cols="60">{params}</textarea><br>'
            "<button>start reprocess</button></form>"
        )
    return "".join(parts) + ('<p id="action-result" role="status"></p>' if parts else "")


def actions_page(
    experiment: str,
    trial: dict,
    runs: list[dict],
    datasets: list[dict],
    audit: list[dict],
    may: frozenset[str],
    csrf: str,
) -> str:
    """The page; ``csrf`` (the session's token) is given only to a user who may change something."""
    controls = forms(may, trial)
    back = href("./", experiment=experiment, trial_id=trial["id"])
    body = (
        f'<p><a href="{back}">← {esc(experiment)}</a></p>'
        f"<h1>Tags, datasets and reprocessing: {esc(experiment)}</h1>"
        f'<div id="actions" data-experiment="{esc(experiment)}" data-csrf="{esc(csrf)}">'
        + (
            controls
            or '<p class="muted">read-only: your Airflow role may not change tags, '
            "datasets or start a reprocess</p>"
        )
        + "</div><h2>Runs</h2>"
        + runs_table(runs, bool(may))
        + "<h2>Datasets</h2>"
        + datasets_table(datasets)
        + "<h2>Audit log</h2>"
        + audit_table(audit)
        + ('<script src="actions.js"></script>' if controls else "")
    )
    return page(f"Actions {experiment}", body)
