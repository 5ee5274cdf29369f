"""HTML of the dataset progress page: target form, estimate, progress plot, per-shell table.

Names go through ``esc``; numbers are formatted here; the plots are drawn by ``progress.js``
from ``api/datasets/{id}/progress``.
"""

from __future__ import annotations

from .pages import esc, href, number, page, stats_tables
from .progress_model import METRICS
from .splits_page import SCRIPT as SPLITS_SCRIPT
from .splits_page import splits_section

SCRIPTS = ("vendor/plotly.js", "plots.js", "progress.js", SPLITS_SCRIPT)


def target_form(experiment: str, trial_id: int, view: dict) -> str:
    """Metric, target value and resolution; submitting reloads the page with them."""
    options = "".join(
        f'<option value="{key}"{" selected" if key == view["metric"] else ""}>{esc(label)}</option>'
        for key, label in METRICS.items()
    )
    d = "" if view["d"] is None else f"{view['d']:.3g}"
    return (
        '<form id="target" method="get" action="progress">'
        f'<input type="hidden" name="experiment" value="{esc(experiment)}">'
        f'<input type="hidden" name="trial_id" value="{int(trial_id)}">'
        f'<input type="hidden" name="dataset_id" value="{int(view["dataset"]["id"])}">'
        f'target <select name="metric">{options}</select> ≥ '
        f'<input name="target" size="6" value="{view["target"]:g}"> at '
        f'<input name="d" size="5" value="{d}"> Å <button>estimate</button></form>'
    )


def progress_page(experiment: str, trial: dict, view: dict) -> str:
    """The progress of one dataset for one trial."""
    dataset = view["dataset"]
    source = href(
        f"api/datasets/{int(dataset['id'])}/progress",
        experiment=experiment, trial_id=trial["id"], metric=view["metric"],
        target=view["target"], **({} if view["d"] is None else {"d": view["d"]}),
    )  # fmt: skip
    back = href("./", experiment=experiment, trial_id=trial["id"])
    stats = view["dataset_merge"]
    body = (
        f'<p><a href="{back}">← {esc(experiment)}</a></p>'
        f"<h1>Dataset {esc(dataset['name'])} — trial {esc(trial['name'])} v{trial['version']}</h1>"
        f'<p class="muted">tags: {esc(", ".join(dataset["tags"]))}; {view["merged_runs"]} of '
        f"{view['runs']} runs merged; {view['crystals']} crystals</p>"
        + target_form(experiment, trial["id"], view)
        + f'<p id="estimate">{esc(view["estimate"])}</p>'
        f'<section id="progress" data-view="{source}">'
        '<h2>Progress against crystals</h2><div class="plotly" id="plot-progress"></div>'
        '<h2>Per shell (dataset merge)</h2><div class="plotly" id="plot-shells"></div></section>'
        + (
            stats_tables(stats) + f"<p>CC* {number(stats['overall'].get('cc_star'))}, "
            f"CCano {number(stats['overall'].get('cc_ano'))}</p>"
            if stats
            else '<p class="muted">the dataset is not merged yet for this trial</p>'
        )
        + splits_section(view.get("splits", {}))
    )
    return page(f"Progress {dataset['name']}", body, extra_scripts=SCRIPTS)
