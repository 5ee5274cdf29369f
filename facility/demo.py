"""``make demo`` and ``make up``: a simulated beamtime driven through the whole system.

``demo``: start the emulated HPC center and Airflow (SQLite metadata, LocalExecutor, all on
127.0.0.1), let the simulated beamline conclude a few runs, wait while the run-concluded events
drive every run through the DAGs and the dataset merge covers them all, print the merged
statistics and where every result is, stop. A failure is one paragraph saying what and why.

``up``: the same stack left running, the web UI on 127.0.0.1:8080 with a printed login, the
simulator concluding a run every few minutes, each pipeline's outcome (or a stuck one) printed
with its reason, until Ctrl-C. ``up --live [--frame-rate HZ]`` (``make up LIVE=1``) acquires
each run in real time, chunk by chunk, so it is analysed while it is acquired (``sfx_live_run``).

Each session gets its own folder ``<dir>/<UTC time>/`` (earlier sessions are kept); the raw data
of published runs is deleted (``up`` keeps the newest ``--keep-raw`` runs' for reprocessing).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests

from facility.beamline.simulate import SimulationParams, simulate_experiment
from facility.beamtime_stack import RunningBeamtime, running_beamtime
from facility.pipeline_watch import PipelineWatch, wait_for_dataset_merges, wait_for_pipeline
from kernels.funnel import LOGGED_COUNTS

PIPELINE_TIMEOUT = 900.0  # seconds a run's pipeline or the dataset merge may take on a busy machine


def simulate_run(exp_dir: Path, number: int, images: int) -> None:
    params = dataclasses.replace(SimulationParams(), chunk_size=max(images // 2, 1))
    simulate_experiment(exp_dir, 1, images, seed=0, params=params, first_run=number)


def start_live_run(exp_dir: Path, number: int, images: int, frame_rate: float):
    """Acquire run ``number`` live in a child process (the console keeps polling meanwhile)."""
    command = [sys.executable, "-m", "facility.beamline", "simulate", "--out", str(exp_dir)]
    command += ["--first-run", str(number), "--images", str(images), "--seed", "0"]
    command += [
        "--chunk-size",
        str(max(images // 4, 1)),
        "--live",
        "--frame-rate",
        f"{frame_rate:g}",
    ]
    return subprocess.Popen(command)


def session_folder(base: Path) -> Path:
    """A new folder under `base` for this session (UTC time): earlier sessions are kept."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder, n = base / stamp, 1
    while folder.exists():
        folder, n = base / f"{stamp}-{n}", n + 1
    folder.mkdir(parents=True)
    return folder


@dataclass
class RawPruner:
    """Delete raw frames of published runs: ~840 MB a simulated run would fill the disk.

    The center's copy goes as soon as the run is published; the beamline's raw data is kept for
    the newest `keep` published runs, so they can still be reprocessed.
    """

    beamtime: RunningBeamtime
    keep: int
    _kept: list[str] = field(default_factory=list)

    def published(self, run: str) -> None:
        bt = self.beamtime
        shutil.rmtree(bt.center.root / bt.beamtime.hpc_run_dir(run).lstrip("/"), ignore_errors=True)
        if run not in self._kept:
            self._kept.append(run)
        while len(self._kept) > self.keep:
            shutil.rmtree(bt.exp_dir / "runs" / self._kept.pop(0), ignore_errors=True)


def _stats(overall: dict) -> str:
    def number(key: str, fmt: str) -> str:
        value = overall.get(key)
        return format(value, fmt) if isinstance(value, (int, float)) else "n/a"

    return (
        f"{overall.get('n_unique', '?')} unique reflections to {number('d_min', '.2f')} A, "
        f"completeness {number('completeness', '.3f')}, multiplicity {number('multiplicity', '.1f')}, "
        f"CC1/2 {number('cc_half', '.3f')}"
    )


def report(exp_dir: Path, runs: list[str], trial: str, datasets: list[Path]) -> None:
    """Print each run's funnel and merged statistics, each dataset's, and every result's path."""
    for run in runs:
        results = exp_dir / "results" / trial / run
        summary = json.loads((results / "summary.json").read_text())
        overall = json.loads((results / "merge_stats.json").read_text()).get("overall", {})
        funnel = " -> ".join(f"{summary.get(k, '?')} {k}" for k in LOGGED_COUNTS)
        print(f"run {run}: {funnel}; merged {_stats(overall)}")
    for folder in datasets:
        overall = json.loads((folder / "merge_stats.json").read_text()).get("overall", {})
        print(f"dataset {folder.parent.name} ({len(runs)} runs): merged {_stats(overall)}")
    print("results:")
    for folder in [*(exp_dir / "results" / trial / run for run in runs), *datasets]:
        for path in sorted(folder.iterdir()):
            print(f"  {path}")


def demo(workdir: Path, runs: int, images: int) -> int:
    started = time.monotonic()
    with running_beamtime(workdir) as beamtime:
        print(
            f"Airflow UI {beamtime.airflow.base_url} (login {beamtime.airflow.username} / "
            f"password in {beamtime.airflow.home / 'passwords.json'}); "
            f"HPC center {beamtime.center.base_url}",
            flush=True,
        )
        pruner = RawPruner(beamtime, keep=0)
        names = []
        for number in range(1, runs + 1):
            simulate_run(beamtime.exp_dir, number, images)
            names.append(f"r{number:04d}")
        for name in names:
            dag_run = wait_for_pipeline(beamtime, name, timeout=PIPELINE_TIMEOUT)
            print(f"run {name}: pipeline succeeded {dag_run['note'] or ''}".rstrip(), flush=True)
            pruner.published(name)
        datasets = wait_for_dataset_merges(beamtime, names, timeout=PIPELINE_TIMEOUT)
        report(beamtime.exp_dir, names, beamtime.beamtime.trial, datasets)
        print(f"results DB: {beamtime.beamtime.results_db}")
        print(f"task logs: {beamtime.airflow.home / 'logs'}")
    print(f"demo done in {time.monotonic() - started:.0f} s; everything it started is stopped")
    print(f"this session's folder (kept): {workdir}")
    return 0


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt  # leave through the with-blocks, which stop everything started


def up(workdir: Path, images: int, every: float, keep_raw: int, frame_rate: float | None) -> int:
    """The stack left running; runs every ``every`` s, acquired live at ``frame_rate`` if set."""
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    with running_beamtime(workdir, port=8080) as beamtime:
        print(
            f"Airflow UI: {beamtime.airflow.base_url}  login: {beamtime.airflow.username} / "
            f"{beamtime.airflow.password}"
        )
        print(
            f"Beamtime dashboard: {beamtime.airflow.base_url}/sfxflow/  (Ctrl-C stops everything)"
        )
        print(f"experiment folder: {beamtime.exp_dir}", flush=True)
        watch, pruner = PipelineWatch(beamtime), RawPruner(beamtime, keep=keep_raw)
        number, next_run, daq = 1, time.monotonic(), None
        try:
            while True:
                if time.monotonic() >= next_run and (daq is None or daq.poll() is not None):
                    if frame_rate:
                        daq = start_live_run(beamtime.exp_dir, number, images, frame_rate)
                    else:
                        simulate_run(beamtime.exp_dir, number, images)
                    number, next_run = number + 1, next_run + every
                for news in _poll(watch):
                    print(news.line, flush=True)
                    if news.dag_id in ("sfx_run", "sfx_live_run") and news.state == "success":
                        pruner.published(news.run_id.split("__")[0])
                time.sleep(1.0 if frame_rate else 5.0)
        except KeyboardInterrupt:
            print("stopping")
        finally:
            if daq is not None and daq.poll() is None:
                daq.terminate()
                daq.wait()
    print(f"this session's folder (kept): {workdir}")
    return 0


def _poll(watch: PipelineWatch) -> list:
    """The watch's news; a slow or restarting api-server is said, not fatal, on a console."""
    try:
        return watch.poll()
    except requests.RequestException as exc:
        print(f"(Airflow's REST API did not answer: {exc}; asking again)", flush=True)
        return []


def one_paragraph(mode: str, exc: BaseException, workdir: Path) -> str:
    """What failed and why, in one paragraph (no traceback), and where to read more."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if len(text) > 800:
        text = text[:800] + " ..."
    return (
        f"make {mode} failed: {text}. Logs: Airflow components and tasks under "
        f"{workdir / 'airflow'}, analysis jobs under {workdir / 'center'}."
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m facility.demo", description=__doc__)
    parser.add_argument("mode", nargs="?", choices=("demo", "up"), default="demo")
    parser.add_argument(
        "--dir", default="var/demo", help="sessions folder (a new <UTC time> folder per session)"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--every", type=float, default=180.0, help="seconds between runs (up)")
    parser.add_argument(
        "--keep-raw", type=int, default=3, help="published runs whose raw data is kept (up)"
    )
    parser.add_argument("--live", action="store_true", help="acquire runs in real time (up)")
    parser.add_argument("--frame-rate", type=float, default=120.0, help="with --live (Hz)")
    args = parser.parse_args(argv)
    workdir = Path(args.dir).resolve()
    try:
        workdir = session_folder(workdir)
        print(f"session folder: {workdir}", flush=True)
        if args.mode == "up":
            rate = args.frame_rate if args.live else None
            return up(workdir, args.images, args.every, args.keep_raw, rate)
        return demo(workdir, args.runs, args.images)
    except (RuntimeError, TimeoutError, OSError, ValueError, requests.RequestException) as exc:
        print(one_paragraph(args.mode, exc, workdir), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
