"""HTML of the dashboard pages. Every value from the DB or the request goes through ``esc``.

Links are relative to the dashboard's mount point, so the pages work at any ``url_prefix``.
"""

from __future__ import annotations

import math
from html import escape
from urllib.parse import urlencode

from kernels.funnel import LOGGED_COUNTS

STYLE = """
body{font-family:system-ui,sans-serif;margin:1em;color:#222}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:2px 8px;text-align:right}
th{background:#eee}td.name{text-align:left}img{max-width:100%;border:1px solid #ddd}
progress{width:7em}.muted{color:#777}
"""
OVERALL_COLUMNS = (
    ("d_min", "d min (Å)"),
    ("completeness", "completeness"),
    ("multiplicity", "multiplicity"),
    ("mean_i_over_sigma", "⟨I/σ⟩"),
    ("cc_half", "CC½"),
    ("n_unique", "unique"),
)
RUN_COLUMNS = ("state", *LOGGED_COUNTS, "turnaround_s")
PASSED = LOGGED_COUNTS[1:]  # the funnel's bars: fractions of the images seen
SHELLS_SCRIPTS = ("vendor/plotly.js", "plots.js", "shells.js")  # the overview's per-shell plots


def esc(value) -> str:
    """Text of any value, HTML-escaped (quotes included, so it is safe in attributes too)."""
    return escape("" if value is None else str(value), quote=True)


def number(value, digits: int = 3) -> str:
    """A statistic for display: '–' when missing or not finite."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}g}" if isinstance(value, float) else esc(value)


def href(path: str, **params) -> str:
    """An escaped relative link with URL-encoded query parameters."""
    return esc(f"{path}?{urlencode(params)}" if params else path)


def page(title: str, body: str, script: bool = False, extra_scripts: tuple[str, ...] = ()) -> str:
    sources = (("dashboard.js",) if script else ()) + extra_scripts
    scripts = "".join(f'<script src="{esc(src)}"></script>' for src in sources)
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{STYLE}</style></head><body>{body}{scripts}</body></html>"
    )


def picker(
    experiments: list[str], trials: list[dict], experiment: str | None, trial_id: int | None
) -> str:
    """The experiment and trial selection form."""
    exp_options = "".join(
        f'<option value="{esc(e)}"{" selected" if e == experiment else ""}>{esc(e)}</option>'
        for e in experiments
    )
    trial_options = "".join(
        f'<option value="{t["id"]}"{" selected" if t["id"] == trial_id else ""}>{esc(t["name"])} v{t["version"]}</option>'
        for t in trials
    )
    return (
        f'<form method="get" action="./">experiment <select name="experiment">{exp_options}</select> '
        f'trial <select name="trial_id">{trial_options}</select> <button>show</button></form>'
    )


def funnel_cell(row: dict) -> str:
    """hits / indexed / integrated as fractions of the images seen, as progress bars."""
    total = max(row["images"], 1)
    return "".join(
        f'<progress data-field="{key}" value="{row[key]}" max="{total}" title="{key}"></progress>'
        for key in PASSED
    )


def run_cell(key: str, value, touched: bool = True) -> str:
    if key == "turnaround_s":
        shown = f"{value:.0f} s" if value is not None else "–"
    elif key in LOGGED_COUNTS and not touched:
        shown = "–"  # the trial never touched the run: no counts, not zeros
    else:
        shown = esc(value)
    return f'<td data-field="{key}">{shown}</td>'


def log_link(url: str) -> str:
    """A link to an Airflow task log (only http(s) URLs; opened in the whole window)."""
    if not url.startswith(("http://", "https://", "/")):
        return ""
    return f'<a class="log" href="{esc(url)}" target="_top">task log</a>'


def runs_table(experiment: str, trial_id: int, rows: list[dict]) -> str:
    labels = ("run", "pipeline", "log", "job", *RUN_COLUMNS[1:-1], "turnaround")
    head = "".join(f"<th>{h}</th>" for h in (*labels, f"funnel ({' / '.join(PASSED)})"))
    body = "".join(
        f'<tr data-run-id="{row["run_id"]}" data-log="{esc(row["log_url"])}"><td class="name">'
        f'<a href="{href("run", run_id=row["run_id"], trial_id=trial_id)}">{esc(row["run"])}</a></td>'
        f'<td class="name" data-field="pipeline">{esc(row["pipeline"])}</td>'
        f'<td class="name">{log_link(row["log_url"])}</td>'
        + "".join(run_cell(key, row[key], row["touched"]) for key in RUN_COLUMNS)
        + f"<td>{funnel_cell(row)}</td></tr>"
        for row in rows
    )
    refresh = href("api/runs", experiment=experiment, trial_id=trial_id)
    return f'<table id="runs" data-refresh="{refresh}"><tr>{head}</tr>{body}</table>'


def stats_tables(stats: dict) -> str:
    """Overall merged statistics and the per-shell table."""
    overall = stats["overall"]
    head = "".join(f"<th>{label}</th>" for _, label in OVERALL_COLUMNS)
    over = "".join(f"<td>{number(overall.get(key))}</td>" for key, _ in OVERALL_COLUMNS)
    shells = "".join(
        "<tr>"
        + "".join(f"<td>{number(shell.get(key))}</td>" for key, _ in OVERALL_COLUMNS)
        + "</tr>"
        for shell in stats["shells"]
    )
    return (
        f'<table class="overall"><tr>{head}</tr><tr>{over}</tr></table>'
        f'<details><summary>per shell</summary><table class="shells"><tr>{head}</tr>{shells}</table></details>'
    )


def progress_link(dataset: dict, trial_id: int) -> str:
    """Link to the dataset's progress page (crystals needed for a target)."""
    link = href(
        "progress", experiment=dataset["experiment"], trial_id=trial_id, dataset_id=dataset["id"]
    )
    return f'<p><a class="progress" href="{link}">progress and crystals needed</a></p>'


def dataset_section(dataset: dict, trial_id: int, stats: dict | None) -> str:
    title = f'<h3>{esc(dataset["name"])} <span class="muted">tags: {esc(", ".join(dataset["tags"]))}</span></h3>'
    if stats is None:
        return (
            title
            + progress_link(dataset, trial_id)
            + '<p class="muted">not merged yet for this trial</p>'
        )
    return (
        title
        + progress_link(dataset, trial_id)
        + stats_tables(stats)
        + f'<div class="plotly" id="plot-shells-{int(dataset["id"])}"></div>'  # shells.js draws
    )


def dashboard(
    picker_html: str,
    experiment: str | None,
    trial: dict | None,
    rows: list[dict],
    datasets_html: list[str],
    merged_at: float,
) -> str:
    """The beamtime overview of one experiment and trial.

    ``merged_at`` (when the trial's merged statistics last changed) lets the page see a new
    merge and redraw its tables and plots.
    """
    if experiment is None or trial is None:
        return page(
            "Beamtime",
            "<h1>Beamtime</h1>" + picker_html + "<p>No experiment or trial recorded yet.</p>",
        )
    body = (
        f"<h1>Beamtime: {esc(experiment)}</h1>{picker_html}"
        '<p><a href="settings">settings and trial parameters</a> · '
        f'<a href="{href("timeline", experiment=experiment, trial_id=trial["id"])}">timeline</a> · '
        f'<a href="{href("actions", experiment=experiment, trial_id=trial["id"])}">tags, datasets and reprocessing</a> · '
        f'<a href="{href("setup", experiment=experiment)}">setup runs (cell, geometry)</a></p>'
        f"<h2>Runs — trial {esc(trial['name'])} v{trial['version']}</h2>"
        + runs_table(experiment, trial["id"], rows)
        + f'<h2>Merged statistics per dataset</h2><div id="datasets" data-merged-at="{float(merged_at)!r}" '
        f'data-source="{href("api/datasets", experiment=experiment, trial_id=trial["id"])}">'
        + ("".join(datasets_html) or '<p class="muted">no datasets defined</p>')
        + "</div>"
    )
    return page(f"Beamtime {experiment}", body, script=True, extra_scripts=SHELLS_SCRIPTS)


def run_page(
    experiment: str,
    run: str,
    run_id: int,
    trial: dict,
    counts: dict,
    jobs: list[dict],
    summary: dict | None,
    pipeline: str,
    log_url: str,
    view_html: str = "",
    view_scripts: tuple[str, ...] = (),
) -> str:
    """One run and trial: pipeline state, live funnel, images by status, jobs, weather plot,
    and the run view (``view_html``, drawn by ``view_scripts``)."""
    funnel = "".join(
        f'<tr><td class="name">{key}</td><td data-field="{key}">{counts[key]}</td></tr>'
        for key in LOGGED_COUNTS
    )
    statuses = "".join(
        f'<tr><td class="name">{esc(s)}</td><td>{n}</td></tr>'
        for s, n in sorted(counts["by_status"].items())
    )
    job_rows = "".join(
        "<tr>"
        + "".join(f'<td class="name">{esc(job[k])}</td>' for k in ("machine", "job_id", "state"))
        + "</tr>"
        for job in jobs
    )
    weather = href(f"api/runs/{int(run_id)}/weather", trial_id=trial["id"])
    refresh = href(f"api/runs/{int(run_id)}/progress", trial_id=trial["id"])
    back = href("./", experiment=experiment, trial_id=trial["id"])
    body = (
        f'<p><a href="{back}">← {esc(experiment)}</a></p>'
        f"<h1>Run {esc(run)} — trial {esc(trial['name'])} v{trial['version']}</h1>"
        f"<p>pipeline: {esc(pipeline)} {log_link(log_url)}</p>"
        f'<p><a id="frames-link" href="{href("frames", run_id=run_id, trial_id=trial["id"])}">frames</a>'
        f' · <a href="{href("powder", run_id=run_id, trial_id=trial["id"])}">virtual powder</a></p>'
        f"<p>status: {esc(summary['status']) if summary else 'running or not started'}</p>"
        f'<h2>Funnel</h2><table id="funnel" data-refresh="{refresh}">{funnel}</table>'
        f'<h2>Images by status</h2><table id="by-status">{statuses}</table>'
        f"<h2>Jobs</h2><table><tr><th>machine</th><th>job</th><th>state</th></tr>{job_rows}</table>"
        f"<h2>Computational weather</h2>"
        + (
            f'<div class="plotly" id="plot-weather" data-weather="{weather}"></div>'
            if counts["images"]
            else '<p class="muted">no images processed yet</p>'
        )
        + view_html
    )
    return page(f"Run {run}", body, script=True, extra_scripts=view_scripts)
