"""HTML of the frame viewer and the virtual powder pages (values through ``esc``, links through
``href``; the drawing is done by ``frame_viewer.js`` and ``powder.js``)."""

from __future__ import annotations

from .pages import esc, href, page

VIEWER_STYLE = (
    "#frame{border:1px solid #999;background:#000;cursor:crosshair;touch-action:none}"
    ".legend span{display:inline-block;width:.8em;height:.8em;border:2px solid;margin:0 .3em}"
    "#controls label{margin-right:1em}"
)


def _title(ctx) -> str:
    run_link = href("run", run_id=ctx.run_id, trial_id=ctx.trial["id"])
    return (
        f'<p><a href="{run_link}">← run {esc(ctx.run)}</a></p>'
        f"<h1>Run {esc(ctx.run)} ({esc(ctx.experiment)}) — trial {esc(ctx.trial['name'])} "
        f"v{ctx.trial['version']}</h1>"
    )


def event_link(ctx, where: list | None, label: str, key: str) -> str:
    """A link to another event of the run (``where`` = [chunk, event]); plain text if none."""
    if where is None:
        return f'<span class="muted">{label}</span>'
    url = href(
        "frames", run_id=ctx.run_id, trial_id=ctx.trial["id"], chunk=where[0], event=where[1]
    )
    return f'<a id="{key}" href="{url}">{label}</a>'


def viewer_page(ctx, here: tuple[int, int], around: dict) -> str:
    """The viewer of one event: canvas, contrast and zoom controls, previous/next hit."""
    row = around["row"] or {}
    data = href(
        "frames/data", run_id=ctx.run_id, trial_id=ctx.trial["id"], chunk=here[0], event=here[1]
    )
    state = esc(row.get("status", "not processed with this trial"))
    body = (
        f"<style>{VIEWER_STYLE}</style>{_title(ctx)}"
        f"<p>{event_link(ctx, around['previous_hit'], '◀ previous hit', 'previous-hit')} · "
        f'<b>chunk {here[0]}, event {here[1]}</b>: <span id="status">{state}</span> '
        f'<span class="muted">{esc(row.get("reason", ""))}</span> · '
        f"{event_link(ctx, around['next_hit'], 'next hit ▶', 'next-hit')} · "
        f'<a href="{href("powder", run_id=ctx.run_id, trial_id=ctx.trial["id"])}">virtual powder</a></p>'
        '<p id="controls"><label>contrast max <input id="vmax" type="range" min="0" max="1000">'
        ' <output id="vmax-value"></output></label>'
        '<label><input id="log" type="checkbox"> log</label>'
        '<label><input id="show-spots" type="checkbox" checked> spots</label>'
        '<label><input id="show-predictions" type="checkbox" checked> predictions</label>'
        '<button id="zoom-in">+</button><button id="zoom-out">−</button>'
        '<button id="zoom-reset">fit</button></p>'
        '<p class="legend"><span style="border-color:#0f0"></span>found spots '
        '<span style="border-color:#f0f"></span>predicted (indexed) '
        '<span style="border-color:#fc0"></span>beam</p>'
        f'<canvas id="frame" width="900" height="900" data-src="{data}"></canvas>'
        '<p id="frame-info" class="muted">loading…</p>'
        '<script src="frame_viewer.js"></script>'
    )
    return page(f"Run {ctx.run} event {here[1]}", body)


def powder_page(ctx) -> str:
    """The virtual powder pattern: the 2-D sum and the radial profile (Plotly)."""
    data = href("api/powder", run_id=ctx.run_id, trial_id=ctx.trial["id"])
    frames = href("frames", run_id=ctx.run_id, trial_id=ctx.trial["id"])
    body = (
        f'{_title(ctx)}<p><a href="{frames}">frame viewer</a></p>'
        "<h2>Virtual powder pattern</h2>"
        f'<p id="powder-info" class="muted" data-src="{data}">summing the spots of the hits…</p>'
        '<div id="powder-plane" style="width:700px;height:640px"></div>'
        '<div id="powder-radial" style="width:900px;height:380px"></div>'
        '<script src="vendor/plotly.js"></script><script src="powder.js"></script>'
    )
    return page(f"Run {ctx.run} virtual powder", body)
