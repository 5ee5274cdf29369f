"""The live job (``process --live``) against post-run processing of the same run.

1. Throughput: the same simulated run processed post-run (``mpiexec -n R``, run concluded)
   and live (every chunk marked, the run marker held back until all rows are in), twice each,
   alternated; images/s of the processing phase (first image start to last image end, from
   the DB's weather rows) side by side.
2. Latency: the run delivered chunk by chunk at a pace below the job's rate (as the DAQ and
   per-chunk transfer would); for each chunk the seconds from its marker appearing to all of
   its images' rows being in the results DB (MariaDB), median and p95.

    .venv/bin/python bench/live_job_bench.py [--images 400] [--chunk-size 25] [--ranks 3]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pymysql

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PYTHON = sys.executable
MPIEXEC = str(Path(PYTHON).parent / "mpiexec")
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root"}


def simulate(root: Path, images: int, chunk_size: int) -> Path:
    from facility.beamline.simulate import SimulationParams, simulate_experiment

    params = SimulationParams(chunk_size=chunk_size)
    simulate_experiment(root, 1, images, seed=11, params=params, workers=1, log=lambda *_: None)
    return root / "runs" / "r0001"


def deliver(
    source: Path, run: Path, sizes: list[int], interval: float, marked: dict, end: threading.Event
) -> None:
    """Each chunk's files then its marker, ``interval`` seconds apart; the run marker last,
    once ``end`` is set. ``marked[chunk]`` is the UNIX time its marker appeared."""
    from kernels.io.chunk_marker import write_chunk_marker, write_started
    from kernels.io.marker import write_marker
    from kernels.io.runformat import index_files

    run.mkdir(parents=True)
    shutil.copy(source / "calibration.h5", run)
    write_started(run, 1, 120.0)
    for chunk, index in enumerate(index_files(source)):
        time.sleep(interval)
        names = [index.name.replace(".idx.h5", ".h5"), index.name]
        for name in names:
            shutil.copy(source / name, run)
        write_chunk_marker(run, 1, chunk, sizes[chunk], names)
        marked[chunk] = time.time()
    time.sleep(interval)
    end.wait()
    write_marker(run, 1)


def process(run: Path, out: Path, url: str, ranks: int, live: bool) -> subprocess.Popen:
    cmd = [MPIEXEC, "-n", str(ranks), PYTHON, "-m", "kernels", "process"]
    cmd += ["--run", str(run), "--out", str(out), "--db", url]
    if live:
        cmd += ["--live", "--live-timeout", "120"]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def processing_rate(url: str, run: Path) -> float:
    """Images/s from the first image's start to the last image's end (weather rows)."""
    from kernels.resultsdb import ResultsDB

    db = ResultsDB(url)
    run_id, trial_id = (
        db.ensure_run(run.parent.parent.name, run.name),
        db.get_trial("default")["id"],
    )
    segments = db.weather(run_id, trial_id)
    n = db.image_counts(run_id, trial_id)["images"]
    start = min(s[1] for s in segments)
    end = max(s[2] for s in segments)
    return n / (end - start)


def chunk_rows_times(url: str, run: Path, sizes: list[int], job: subprocess.Popen) -> dict:
    """Poll the DB: the UNIX time each chunk's rows were all there."""
    from kernels.resultsdb import ResultsDB

    db, complete = ResultsDB(url), {}
    while len(complete) < len(sizes) and job.poll() is None:
        try:
            run_id = db.ensure_run(run.parent.parent.name, run.name)
            trial_id = db.get_trial("default")["id"]
            rows = db._select(
                "SELECT chunk, COUNT(*) FROM images WHERE run_id=? AND trial_id=? GROUP BY chunk",
                (run_id, trial_id),
            )
        except LookupError:
            rows = []
        now = time.time()
        for chunk, count in rows:
            if int(count) == sizes[int(chunk)] and int(chunk) not in complete:
                complete[int(chunk)] = now
        time.sleep(0.05)
    return complete


def mariadb_url() -> tuple[str, str]:
    name = f"sfx_bench_{uuid.uuid4().hex[:10]}"
    with pymysql.connect(**MARIADB, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    return name, f"mysql://root@127.0.0.1:3306/{name}"


def drop(name: str) -> None:
    with pymysql.connect(**MARIADB, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")


def run_job(source: Path, work: Path, tag: str, ranks: int, interval: float | None):
    """Process the run post-run (``interval`` None) or live, its chunks landing ``interval``
    seconds apart (0: all there, without the run marker, before the job starts; the run marker
    comes once every row is in); (images/s, marker-to-rows delays)."""
    from kernels.io.runformat import open_run

    with open_run(source) as run_obj:
        sizes = [c.n_events for c in run_obj.chunks]
    name, url = mariadb_url()
    try:
        run, marked, end = source, {}, threading.Event()
        feeder = None
        if interval is not None:
            run = work / tag / "runs" / "r0001"
            if interval:
                end.set()
            feeder = threading.Thread(
                target=deliver, args=(source, run, sizes, interval, marked, end)
            )
            feeder.start()
            while not interval and len(marked) < len(sizes):
                time.sleep(0.05)
        job = process(run, work / f"out-{tag}", url, ranks, live=interval is not None)
        complete = chunk_rows_times(url, run, sizes, job)
        end.set()
        _, stderr = job.communicate(timeout=1800)
        if feeder is not None:
            feeder.join()
        if job.returncode != 0:
            raise SystemExit(f"{tag}: exit {job.returncode}\n{stderr.decode()[-2000:]}")
        delays = [complete[c] - marked[c] for c in marked if c in complete]
        return processing_rate(url, run), delays
    finally:
        drop(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--chunk-size", type=int, default=25)
    parser.add_argument("--ranks", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = simulate(work / "exp", args.images, args.chunk_size)
        rates: dict[str, list[float]] = {"post": [], "live": []}
        for repeat in range(2):  # alternated, so the machine's load hits both alike
            rates["post"].append(run_job(source, work, f"post{repeat}", args.ranks, None)[0])
            rates["live"].append(run_job(source, work, f"live{repeat}", args.ranks, 0.0)[0])
        post_rate = max(rates["post"])
        interval = 2.0 * args.chunk_size / post_rate  # chunks land at half the job's rate
        _, delays = run_job(source, work, "live-paced", args.ranks, interval)
    print(f"run: {args.images} images in chunks of {args.chunk_size}, {args.ranks} ranks")
    for label, key in (
        ("post-run (run concluded)", "post"),
        ("live (chunks marked, no run marker)", "live"),
    ):
        print(f"{label:38s} " + " / ".join(f"{r:.1f}" for r in rates[key]) + " images/s")
    print(
        f"live, a chunk every {interval:.1f} s: marker -> all its rows in the DB: "
        f"median {np.median(delays):.2f} s, p95 {np.percentile(delays, 95):.2f} s "
        f"({len(delays)} chunks; a chunk's own processing is {args.chunk_size / post_rate:.1f} s)"
    )


if __name__ == "__main__":
    main()
