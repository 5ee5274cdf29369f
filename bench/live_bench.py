"""Live runs against today's post-run pipeline, through the whole stack (issue 17).

For each run length (default 5 000 and 20 000 images) on one running beamtime (emulated center
with real MPI jobs, XRootD HTTP-TPC, Airflow with scheduler, triggerer, dag-processor):

1. post-run: the run written at once, then its run marker → ``sfx_run``; prints seconds from
   the run marker to the merged MTZ in the experiment folder, and the job's processing rate
   (images / its compute seconds);
2. live, below that rate (0.7 x) and above it (2 x): the same frames acquired on the frame
   clock (``facility.beamline.replay``) → ``sfx_live_run``; prints seconds from the run marker
   to the merged MTZ, the backlog (images not yet in the results DB) when the run marker is
   written, and the latency from each chunk closing at the DAQ to all its image rows (its hit
   rate) being in the results DB: median and p95; then, per live run, each phase after the
   run marker (``bench/live_phases.py``: chunks and run marker at the center, the job's
   outputs, ``wait_for_job``, the merge job, the download) and marker -> MTZ minus the final
   merge beside the goal's 30 s. Run it with ``PYTHONPATH`` at the repository.

Frames are rendered once (``--distinct-chunks`` chunks of 250) and laid out again as hard
links, so only the center's copy costs disk: a 20 000-image run is 40 GB there, deleted as soon
as its pipeline has published. Needs the kernels' ``process --live``; without it the bench says
so and stops.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.live_phases import live_phases, show_phases
from facility.beamline.live import LiveOptions
from facility.beamline.replay import replay_live, replay_post_run
from facility.beamline.simulate import SimulationParams, simulate_experiment
from facility.beamtime_stack import running_beamtime
from kernels.io.chunk_marker import chunk_marker_name, read_chunk_markers
from kernels.io.marker import MARKER, run_name

REPO = Path(__file__).resolve().parents[1]
CHUNK = 250


def kernels_have_live() -> bool:
    out = subprocess.run(
        [sys.executable, "-m", "kernels", "process", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    ).stdout
    return "--live" in out


class RowWatch(threading.Thread):
    """Polls the results DB (SQLite) for the image rows of one run: when each chunk was whole."""

    def __init__(self, db_path: Path, run: str, events_per_chunk: int):
        super().__init__(daemon=True)
        self.db_path, self.run_label, self.per_chunk = db_path, run, events_per_chunk
        self.whole: dict[int, float] = {}
        self.samples: list[tuple[float, int]] = []  # (time, rows so far)
        self.stop = threading.Event()

    def _counts(self) -> dict[int, int]:
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5) as db:
            rows = db.execute(
                "SELECT i.chunk, COUNT(*) FROM images i JOIN runs r ON r.id = i.run_id"
                " WHERE r.name = ? GROUP BY i.chunk",
                (self.run_label,),
            )
            return dict(rows.fetchall())

    def run(self):
        while not self.stop.is_set():
            try:
                counts = self._counts()
            except sqlite3.Error:  # not created yet, or busy: look again
                counts = {}
            now = time.time()
            self.samples.append((now, sum(counts.values())))
            for chunk, n in counts.items():
                if n >= self.per_chunk and chunk not in self.whole:
                    self.whole[chunk] = now
            self.stop.wait(0.25)

    def rows_at(self, t: float) -> int:
        return max((n for s, n in self.samples if s <= t), default=0)


def marker_to_mtz(bt, dag_id: str, number: int) -> float:
    """Seconds from the run marker at the DAQ to the merged MTZ in the experiment folder."""
    name = run_name(number)
    state = bt.wait_for_dag_run(dag_id, f"{name}__default", timeout=7200)["state"]
    if state != "success":
        raise RuntimeError(
            f"{dag_id} {name} {state}: {bt.failure_reason(dag_id, f'{name}__default')}"
        )
    mtz = bt.exp_dir / "results" / "default" / name / "merged.mtz"
    return mtz.stat().st_mtime - (bt.exp_dir / "runs" / name / MARKER).stat().st_mtime


def processing_rate(bt, number: int) -> float:
    import json

    summary = json.loads(
        (bt.exp_dir / "results" / "default" / run_name(number) / "summary.json").read_text()
    )
    return summary["images"] / summary["timings"]["wall_seconds"]


def drop_raw_at_center(bt, number: int) -> None:
    """Free the center's copy of a published run (40 GB for 20 000 images)."""
    runs = bt.center.root / bt.beamtime.hpc_dir.lstrip("/") / "runs"
    shutil.rmtree(runs / run_name(number), ignore_errors=True)


def live_run(bt, source, number: int, chunks: int, rate: float, db_path: Path, chunk: int) -> dict:
    watch = RowWatch(db_path, run_name(number), chunk)
    watch.start()
    closed = replay_live(source, bt.exp_dir, number, chunks, LiveOptions(frame_rate_hz=rate))
    concluded = (bt.exp_dir / "runs" / run_name(number) / MARKER).stat().st_mtime
    seconds = marker_to_mtz(bt, "sfx_live_run", number)
    watch.stop.set()
    watch.join()
    latencies = sorted(watch.whole[c] - t for c, t in closed if c in watch.whole)
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))] if latencies else None
    landed = center_marker_times(bt, number)
    to_center = [landed[c] - t for c, t in closed if c in landed]
    return {
        "phases": live_phases(bt, number, watch.whole),
        "seconds": seconds,
        "backlog": chunks * chunk - watch.rows_at(concluded),
        "median": statistics.median(latencies) if latencies else None,
        "p95": p95,
        "to_center": statistics.median(to_center) if to_center else None,
    }


def center_marker_times(bt, number: int) -> dict[int, float]:
    """When each chunk's marker landed at the center (its mtime), by chunk."""
    run_dir = bt.center.root / bt.beamtime.hpc_dir.lstrip("/") / "runs" / run_name(number)
    return {
        m.chunk: (run_dir / chunk_marker_name(m.run_name, m.chunk)).stat().st_mtime
        for m in read_chunk_markers(run_dir)
    }


def post_run(bt, source, number: int, chunks: int, job_rate: float | None):
    """(post-run marker -> MTZ seconds, the job's images/s) of run ``number``; with ``job_rate``
    given, no post-run run: (nan, job_rate)."""
    if job_rate is not None:
        return float("nan"), job_rate
    replay_post_run(source, bt.exp_dir, number, chunks)
    seconds = marker_to_mtz(bt, "sfx_run", number)
    rate = processing_rate(bt, number)
    drop_raw_at_center(bt, number)
    return seconds, rate


def show(label: str, result: dict, post: float) -> None:
    lat = (
        f"chunk close -> hit rate in DB median {result['median']:.1f} s, p95 {result['p95']:.1f} s"
        f" (close -> marker at the center median {result['to_center']:.1f} s)"
        if result["median"] is not None and result["to_center"] is not None
        else "no chunk's rows seen in the DB while it ran"
    )
    print(
        f"  {label:<28} marker -> MTZ {result['seconds']:7.1f} s (post-run {post:7.1f} s); "
        f"backlog at run end {result['backlog']} images; {lat}; load {os.getloadavg()[0]:.1f}"
    )
    print("    after the run marker:")
    show_phases(result["phases"])


def runs_on_stack(bt, source: Path, args) -> None:
    """Each run length post-run (unless ``--job-rate``), then live at each rate factor."""
    db_path = Path(bt.beamtime.results_db.removeprefix("sqlite:///"))
    number = 1
    for images in args.images:
        chunks = -(-images // args.chunk_size)
        post, rate = post_run(bt, source, number, chunks, args.job_rate)
        print(
            f"\n{images} images: post-run marker -> MTZ {post:.1f} s; "
            f"the job processes {rate:.1f} images/s on this machine"
        )
        for factor in args.factors:
            number += 1
            result = live_run(bt, source, number, chunks, factor * rate, db_path, args.chunk_size)
            drop_raw_at_center(bt, number)
            label = "below" if factor < 1 else "above"
            show(f"live {label} ({factor * rate:.1f} Hz)", result, post)
        number += 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--distinct-chunks", type=int, default=4)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=CHUNK, help="images per chunk")
    parser.add_argument(
        "--factors",
        type=float,
        nargs="+",
        default=[0.7, 2.0],
        help="live frame rates, as multiples of the post-run job's processing rate",
    )
    parser.add_argument(
        "--job-rate",
        type=float,
        help="the job's processing rate (images/s) to take instead of measuring it: "
        "skips the post-run runs (before/after comparisons of the live path alone)",
    )
    parser.add_argument(
        "--linger",
        type=float,
        nargs="+",
        default=[30.0],
        help="live_linger_seconds of each stack in turn; 0 is the baseline that defers after "
        "every batch of chunks",
    )
    args = parser.parse_args(argv)
    if not kernels_have_live():
        print("kernels process --live is not in this tree: the live job (issue 17, kernels side)")
        print("is needed for this bench; nothing measured.")
        return 2
    with tempfile.TemporaryDirectory(dir=os.environ.get("SFXFLOW_BENCH_DIR")) as tmp:
        os.chmod(tmp, 0o755)  # the unprivileged xrootd servers must traverse it
        source_exp = Path(tmp) / "rendered"
        params = dataclasses.replace(SimulationParams(), chunk_size=args.chunk_size)
        simulate_experiment(
            source_exp, 1, args.distinct_chunks * args.chunk_size, seed=1, params=params
        )
        source = source_exp / "runs" / "r0001"
        for linger in args.linger:
            print(f"\nlive_linger_seconds {linger:g} (0: defer after every batch)")
            with running_beamtime(
                Path(tmp) / f"stack-{linger:g}",
                experiment="livebench",
                use_xrootd=True,
                ranks=args.ranks,
                facility_poll_seconds=1.0,
                job_poll=(0.2, 1.5, 2.0),
                live_timeout=300.0,
                live_linger_seconds=linger,
            ) as bt:
                runs_on_stack(bt, source, args)
    print(
        "\ngoal below the processing rate: live marker -> MTZ <= final merge + 30 s, the same "
        "for both lengths; chunk latency median <= 15 s, p95 <= 30 s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
