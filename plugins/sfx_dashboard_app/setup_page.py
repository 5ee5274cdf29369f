"""HTML of a setup run's results (``sfx_setup``: ``<exp_dir>/setup/<trial>/``): the cell found
with its spread, lattice and candidate space groups, the minority cells, the space groups ranked
by the absences and the group they chose, the cell histograms,
the geometry refinement's rms before/after overall and per panel, and the residual map.
Every value from the files goes through ``esc`` or ``number``."""

from __future__ import annotations

from kernels.cell.report import HISTOGRAM_FILE
from kernels.geomrefine.report import MAP_FILE

from .pages import esc, href, number, page

SETUP_IMAGES = (HISTOGRAM_FILE, MAP_FILE)
CELL_NAMES = ("a (Å)", "b (Å)", "c (Å)", "α (°)", "β (°)", "γ (°)")


def row(cells, head: bool = False) -> str:
    tag = "th" if head else "td"
    return "<tr>" + "".join(f"<{tag}>{cell}</{tag}>" for cell in cells) + "</tr>"


def cell_section(report: dict, chosen: str | None) -> str:
    """The dominant cell: values and spread, lattice, space groups (the trial's marked)."""
    main = report["main"]
    groups = ", ".join(
        f"<strong>{esc(g)}</strong> (the trial's)" if g == chosen else esc(g)
        for g in main["space_groups"]
    )
    others = "".join(
        row([esc(f["bravais"]), *(number(v, 5) for v in f["cell"]), number(f["images"])])
        for f in report["others"]
    )
    return (
        f'<h2>Unit cell</h2><p id="setup-lattice">{esc(main["bravais"])} '
        f"({esc(main['crystal_family'])}), {number(main['images'])} of "
        f"{number(report['cells_read'])} images in the dominant cluster, "
        f"{number(report['unassigned'])} in none</p>"
        '<table id="setup-cell">'
        + row(["", *CELL_NAMES], head=True)
        + row(["cell", *(number(v, 5) for v in main["cell"])])
        + row(["spread (σ)", *(number(v, 2) for v in main["spread"])])
        + f'</table><p id="setup-space-groups">candidate space groups: {groups}</p>'
        + (
            "<h3>Other cells (minority)</h3><table>"
            + row(["lattice", *CELL_NAMES, "images"], head=True)
            + f"{others}</table>"
            if others
            else ""
        )
    )


def absences_section(absences: dict | None) -> str:
    """The lattice's space groups ranked by a merge's absences (``absences.json``), best first,
    and the absences' choice or why they make none; nothing for a setup without them."""
    if absences is None:
        return ""
    choice = absences["choice"]
    verdict = (
        f"chosen: <strong>{esc(choice['space_group'])}</strong>"
        if choice["space_group"]
        else "no choice (the lattice's first candidate is taken)"
    )
    rows = "".join(
        row(
            [
                esc(r["space_group"]),
                number(r["called_absent"]),
                number(r["absent_mean_i_over_sigma"], 3),
                number(r["disagreements"]),
                number(r["tested"]),
            ]
        )
        for r in absences["ranking"]
    )
    head = ["space group", "called absent", "their mean I/σ", "disagree", "tested"]
    return (
        f"<h2>Space group from the absences</h2><p>merged in {esc(absences['merged_in'])} "
        f"(no screw axes, no glides); present from I/σ ≥ {number(absences['cut'], 3)}</p>"
        f'<p id="setup-absence-choice">{verdict}: {esc(choice["reason"])}</p>'
        f'<table id="setup-absences">{row(head, head=True)}{rows}</table>'
    )


def panel_rows(geometry: dict) -> str:
    """Per panel: spots, rms before and after, mean residual after (fs, ss)."""
    before = {p["panel"]: p for p in geometry["panels_before"]}
    return "".join(
        row(
            [
                esc(p["panel"]),
                number(p["spots"]),
                number(before.get(p["panel"], {}).get("rms_px"), 3),
                number(p["rms_px"], 3),
                number(p["mean_fs_px"], 2),
                number(p["mean_ss_px"], 2),
            ]
        )
        for p in geometry["panels_after"]
    )


def geometry_section(geometry: dict) -> str:
    shift = ", ".join(number(v, 3) for v in geometry["detector_shift_mm"])
    return (
        f'<h2>Detector geometry</h2><p id="setup-rms">rms residual '
        f"{number(geometry['rms_before_px'], 3)} px before, "
        f"{number(geometry['rms_after_px'], 3)} px after refinement "
        f"({number(geometry['spots'])} spots on {number(geometry['images'])} images, "
        f"{number(100 * geometry['inlier_fraction'], 3)} % inliers); detector moved "
        f"({shift}) mm; {len(geometry['groups'])} groups refined, "
        f"{len(geometry['held_groups'])} held</p>"
        '<table id="setup-panels">'
        + row(
            [
                "panel",
                "spots",
                "rms before (px)",
                "rms after (px)",
                "mean fs after",
                "mean ss after",
            ],
            head=True,
        )  # fmt: skip
        + panel_rows(geometry)
        + "</table>"
    )


def setup_page(
    experiment: str, trial: dict, report: dict, geometry: dict, absences: dict | None = None
) -> str:
    """One setup's results; ``trial`` is the trial it registered (id, name, version, params);
    ``absences`` its absences.json (None: a setup from before the absences step)."""
    ids = {"experiment": experiment, "trial_id": trial["id"]}
    image = {name: href("setup/file", **ids, name=name) for name in SETUP_IMAGES}
    body = (
        f'<p><a href="{href("./", **ids)}">← {esc(experiment)}</a> · '
        f'<a href="{href("setup", experiment=experiment)}">all setups</a></p>'
        f"<h1>Setup of trial {esc(trial['name'])} v{int(trial['version'])}: {esc(experiment)}</h1>"
        f'<p><a href="{href("actions", **ids)}">make this trial the experiment\'s default or '
        "reprocess runs with it</a></p>"
        + cell_section(report, trial["params"].get("crystal", {}).get("space_group"))
        + absences_section(absences)
        + f'<img id="setup-histograms" alt="cell histograms" src="{image[HISTOGRAM_FILE]}">'
        + geometry_section(geometry)
        + f'<img id="setup-residuals" alt="residual map" src="{image[MAP_FILE]}">'
    )
    return page(f"Setup {trial['name']}", body)


def setups_list(experiment: str, found: list[dict]) -> str:
    """Links to every trial of the experiment with setup results here."""
    items = "".join(
        f'<li><a href="{href("setup", experiment=experiment, trial_id=t["id"])}">'
        f"{esc(t['name'])} v{int(t['version'])}</a></li>"
        for t in found
    )
    body = (
        f'<p><a href="{href("./", experiment=experiment)}">← {esc(experiment)}</a></p>'
        f"<h1>Setup runs (cell and geometry): {esc(experiment)}</h1>"
        + (
            f'<ul id="setups">{items}</ul>'
            if items
            else '<p class="muted">no setup results yet</p>'
        )
    )
    return page(f"Setups {experiment}", body)
