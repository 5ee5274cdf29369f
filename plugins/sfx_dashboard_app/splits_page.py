"""HTML of a dataset's per-event splits (the dataset page): per split, a table of its sets —
images, CC½, completeness, and each set's Riso and CCiso against the reference set — and the
per-shell CCiso plot, drawn by ``splits.js`` from the JSON in the plot's ``data-shells``.

Labels go through ``esc`` (attributes included); numbers are formatted by ``number``.
"""

from __future__ import annotations

import json

from .pages import esc, number

SCRIPT = "splits.js"
HEAD = ("set", "images", "CC½", "completeness", "Riso", "CCiso")


def set_row(label: str, values: dict, difference: dict | None) -> str:
    """One set of a split; the reference set has no difference of its own."""
    cells = [values.get("images"), values.get("cc_half"), values.get("completeness")]
    iso = (
        '<td class="name muted" colspan="2">reference</td>'
        if difference is None
        else f"<td>{number(difference.get('riso'))}</td><td>{number(difference.get('cc_iso'))}</td>"
    )
    return (
        f'<tr><td class="name">{esc(label)}</td>'
        + "".join(f"<td>{number(value)}</td>" for value in cells)
        + iso
        + "</tr>"
    )


def split_table(index: int, tag: str, split: dict) -> str:
    """One split: heading, its sets' table, and its per-shell CCiso plot."""
    rows = "".join(
        set_row(label, values, split["differences"].get(label))
        for label, values in split["sets"].items()
    )
    shells = {
        label: [{"d_min": s["d_min"], "cc_iso": s["cc_iso"]} for s in d.get("shells", [])]
        for label, d in split["differences"].items()
    }
    head = "".join(f"<th>{h}</th>" for h in HEAD)
    no_set = split.get("images_in_no_set") or 0
    return (
        f'<h3>split {esc(tag)} <span class="muted">against set {esc(split["reference"])}'
        f"{f'; {no_set} images in no set' if no_set else ''}</span></h3>"
        f'<table class="split" data-split="{esc(tag)}"><tr>{head}</tr>{rows}</table>'
        f'<div class="plotly split-cciso" id="split-cciso-{index}" '
        f'data-split="{esc(tag)}" data-shells="{esc(json.dumps(shells))}"></div>'
    )


def splits_section(splits: dict[str, dict]) -> str:
    """Every split of the dataset merge for the trial ('' when it has none)."""
    if not splits:
        return ""
    return (
        '<section id="splits"><h2>Splits (per-event tags)</h2>'
        + "".join(split_table(i, tag, split) for i, (tag, split) in enumerate(splits.items()))
        + "</section>"
    )
