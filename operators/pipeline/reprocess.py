"""Which runs to (re)process, as requests for ``sfx_run`` DAG runs; the checks of a reprocess
request made before anything starts."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from kernels.io.marker import RUN_NAME, MarkerError, read_marker, run_name, run_order
from operators.pipeline.job_script import check_name
from operators.pipeline.run import run_problem


def run_requests(runs: list[str], trial: str, trial_params: dict, ranks: int) -> list[dict]:
    """TriggerDagRunOperator kwargs for each run, oldest first, with run id ``<run>__<trial>``."""
    check_name("trial", trial)
    return [
        {
            "trigger_run_id": f"{run}__{trial}",
            "conf": {"run": run, "trial": trial, "trial_params": trial_params, "ranks": ranks},
        }
        for run in sorted(runs, key=run_order)
    ]


def parse_run_range(text: str) -> list[str]:
    """``"1-3,7"`` -> ``["r0001", "r0002", "r0003", "r0007"]``; ValueError on anything else."""
    runs: set[str] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = re.fullmatch(r"(\d{1,9})(?:\s*-\s*(\d{1,9}))?", part)
        if not m:
            raise ValueError(f"bad run range {part!r}: use e.g. 1-3,7")
        first, last = int(m[1]), int(m[2] or m[1])
        if last < first:
            raise ValueError(f"bad run range {part!r}: {last} < {first}")
        runs.update(run_name(n) for n in range(first, last + 1))
    return sorted(runs, key=run_order)


def concluded_runs(
    exp_dir, start: datetime | None = None, end: datetime | None = None
) -> list[str]:
    """Runs of the experiment concluded in [start, end) (all concluded runs if no bounds)."""
    found = []
    run_dirs = [path for path in (Path(exp_dir) / "runs").glob("r*") if RUN_NAME.match(path.name)]
    for run_dir in sorted(run_dirs, key=lambda path: run_order(path.name)):
        try:
            when = datetime.fromisoformat(read_marker(run_dir).concluded_at)
        except MarkerError:
            continue  # still being written
        if (start is None or when >= start) and (end is None or when < end):
            found.append(run_dir.name)
    return found


CONF_KEYS = ("trial", "trial_params", "runs", "ranks")  # the Params of sfx_reprocess
ALL_RUNS = "all"


class ReprocessRequestError(ValueError):
    """A reprocess request refused before anything started; the message says what to change."""


def check_conf_keys(conf: dict) -> None:
    """Refuse keys that are not Params of ``sfx_reprocess`` (a typo like ``"runz"`` would
    otherwise be dropped silently and change what is reprocessed)."""
    unknown = sorted(set(conf or {}) - set(CONF_KEYS))
    if unknown:
        raise ReprocessRequestError(
            f"unknown conf key(s) {unknown} for sfx_reprocess; known: {list(CONF_KEYS)}"
        )


def runs_to_reprocess(
    exp_dir,
    runs_text: str | None,
    manual: bool,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[str]:
    """The runs a reprocess request names, every one checked.

    ``"all"``: every concluded run; a range (``"1-3,7"``): those runs, each of which must exist
    and be concluded; empty: nothing when triggered by hand (an explicit ``"all"`` is needed to
    reprocess everything), the runs concluded in [start, end) for scheduled and backfill runs.

    Raises
    ------
    ReprocessRequestError
        A malformed range, or runs that do not exist or are not concluded (all named at once).
    """
    text = (runs_text or "").strip()
    if text == ALL_RUNS:
        return concluded_runs(exp_dir)
    if not text:
        return [] if manual else concluded_runs(exp_dir, start, end)
    try:
        runs = parse_run_range(text)
    except ValueError as exc:
        raise ReprocessRequestError(f"{exc}, or {ALL_RUNS!r}") from None
    problems = [p for run in runs if (p := run_problem(Path(exp_dir) / "runs", run))]
    if problems:
        raise ReprocessRequestError("; ".join(problems) + ": nothing was started")
    return runs
