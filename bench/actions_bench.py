"""The dashboard's actions page and a tag action in a real api-server over a MariaDB beamtime.

Fills a scratch MariaDB database (dropped afterwards) with ``--runs`` runs of ``--images``
images each (the issue's size: 500 × 10 000), starts Airflow's api-server with the dashboard
plugin (``AirflowStack``) and prints, in one run, the latency of ``/sfxflow/actions`` (ours)
beside the overview ``/sfxflow/`` (the baseline: the same runs table, no tags, no audit log),
and of ``POST /sfxflow/actions/tag`` (a results-DB write, Airflow REST look-ups with the user's
JWT, the audit row). Target: every page ≤ 1 s at p95.

    .venv/bin/python bench/actions_bench.py [--runs 500] [--images 10000] [--repeat 20]

Measured here (2 cores under a load of ~15, 500 × 10 000, ``--repeat 5``; the fill takes ~6 min):
overview p50 14.6 s / p95 14.6 s, actions page 0.19 / 0.21 s, tag action 0.17 / 0.19 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pymysql
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from db_bench import MARIADB, image_rows  # noqa: E402

from facility.airflow_stack import AirflowStack  # noqa: E402
from kernels.resultsdb import ResultsDB  # noqa: E402
from kernels.resultsdb.logger import ImageLogger  # noqa: E402
from plugins.sfx_dashboard_app.csrf import csrf_token  # noqa: E402

EXPERIMENT = "bench"


def fill(url: str, runs: int, images: int) -> tuple[int, list[int]]:
    """(trial id, run ids) of a beamtime of ``runs`` × ``images``, every run tagged."""
    with ResultsDB(url) as db:
        trial_id = db.ensure_trial("t1", {})
        run_ids = []
        for n in range(1, runs + 1):
            run_id = db.ensure_run(EXPERIMENT, f"r{n:04d}", concluded=1000.0 + n)
            db.tag_run(run_id, "sample-a" if n % 2 else "sample-b")
            logger = ImageLogger(ResultsDB(url), run_id, trial_id, batch_rows=50_000)
            logger.add_many(image_rows(images))
            logger.close()
            run_ids.append(run_id)
        return trial_id, run_ids


def latencies(call, repeat: int) -> dict:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call().raise_for_status()
        times.append(time.perf_counter() - t0)
    times.sort()
    return {"p50": statistics.median(times), "p95": times[max(0, int(0.95 * len(times)) - 1)]}


def measure(stack: AirflowStack, trial_id: int, run_ids: list[int], repeat: int) -> dict:
    session = requests.Session()
    jwt = stack.token()
    session.headers["Authorization"] = f"Bearer {jwt}"
    params = {"experiment": EXPERIMENT, "trial_id": trial_id}
    base = f"{stack.base_url}/sfxflow"
    headers = {"Origin": stack.base_url, "X-CSRF-Token": csrf_token(jwt)}
    body = {"experiment": EXPERIMENT, "run_ids": run_ids[:1], "tag": "bench-tag"}
    return {
        "overview (baseline)": latencies(lambda: session.get(f"{base}/", params=params), repeat),
        "actions page (ours)": latencies(
            lambda: session.get(f"{base}/actions", params=params), repeat
        ),
        "tag action (ours)": latencies(
            lambda: session.post(f"{base}/actions/tag", json=body, headers=headers), repeat
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    name = f"sfx_actions_bench_{uuid.uuid4().hex[:8]}"
    with pymysql.connect(**MARIADB, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    url = f"mysql://root@127.0.0.1:3306/{name}"
    try:
        t0 = time.perf_counter()
        trial_id, run_ids = fill(url, args.runs, args.images)
        print(f"filled {args.runs} runs × {args.images} images in {time.perf_counter() - t0:.0f} s")
        with tempfile.TemporaryDirectory(prefix="sfx-actions-bench-") as home:
            stack = AirflowStack(home, env={"SFXFLOW_RESULTS_DB": url})
            with stack.start(components=("api-server",)):
                results = measure(stack, trial_id, run_ids, args.repeat)
        print(f"{'request':24s} {'p50 (s)':>8s} {'p95 (s)':>8s}   target p95 ≤ 1 s")
        for what, t in results.items():
            print(
                f"{what:24s} {t['p50']:8.3f} {t['p95']:8.3f}   {'ok' if t['p95'] <= 1 else 'SLOW'}"
            )
    finally:
        with pymysql.connect(**MARIADB, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name}")


if __name__ == "__main__":
    main()
