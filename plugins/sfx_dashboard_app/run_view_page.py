"""HTML of the run view: the containers ``run_view.js`` draws its Plotly plots into.

Everything shown comes from ``api/runs/{id}/view`` and is written by the script as text or
numbers (Plotly escapes trace and axis text), so no value from the DB is part of this markup.
"""

from __future__ import annotations

from .pages import href

PLOTS = (
    ("rates", "Hit rate and indexing rate (rolling)"),
    ("spots", "Spots per frame"),
    ("resolution", "Estimated resolution per frame (hits)"),
    ("saturated", "Saturated pixels per frame"),
    ("cells", "Unit cell of the refined crystals"),
    ("reasons", "Why images stopped"),
)
SCRIPTS = ("vendor/plotly.js", "plots.js", "run_view.js", "weather.js")


def run_view_section(run_id: int, trial_id: int) -> str:
    """The run view: state, merged statistics and the per-frame plots of one run and trial."""
    source = href(f"api/runs/{int(run_id)}/view", trial_id=int(trial_id))
    plots = "".join(
        f'<h2>{title}</h2><div class="plotly" id="plot-{key}"></div>' for key, title in PLOTS
    )
    return (
        f'<section id="run-view" data-view="{source}" data-run-id="{int(run_id)}" '
        f'data-trial-id="{int(trial_id)}">'
        '<p>run state: <strong id="run-state">…</strong> <span id="run-state-detail" class="muted"></span></p>'
        '<h2>Merged statistics of the run</h2><table id="run-merge"></table>'
        f"{plots}</section>"
    )
