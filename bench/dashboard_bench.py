"""Dashboard speed: a beamtime of 500 runs × 10 000 images in MariaDB, every page and JSON
endpoint of the dashboard timed, p95 printed beside the 1 s goal.

Fills a scratch database on the machine's MariaDB (127.0.0.1:3306): 500 runs with tags
(samples), two datasets, a summary, a job, a pipeline state and a 10-shell merge per run,
and 5 000 000 image rows bulk-loaded with ``LOAD DATA INFILE`` (files under /tmp, read by the
server). Then requests every page and JSON endpoint through the real app (FastAPI
``TestClient``; the Airflow login is overridden, it is not what is measured), each
``--repeats`` times on random runs, and prints p50/p95 per endpoint beside the goal, the
matplotlib PNGs the pages showed before Plotly drew the weather and per-shell plots, the
runs-table query of before (one aggregate over every image row of the experiment) beside
ours (frozen counts of finished runs, images aggregated only for runs still going).

    .venv/bin/python bench/dashboard_bench.py [--runs 500] [--images 10000] [--repeats 20]
        [--keep NAME]   # keep the filled database under NAME and reuse it next time
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

import pymysql
from fastapi.testclient import TestClient

from kernels.resultsdb import IMAGE_COLUMNS, ResultsDB
from plugins.sfx_dashboard_app import create_app
from plugins.sfx_dashboard_app.auth import api_user, page_user

MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root"}
EXPERIMENT = "cxibench"
SAMPLES = ("lysozyme", "thermolysin", "photosystem-ii", "myoglobin", "proteinase-k")
GOAL_S = 1.0
RUNS_PER_FILE = 25  # 250 000 rows per LOAD DATA statement
TIMINGS = '{"read":0.0011,"calibrate":0.0043,"spotfind":0.0071,"index":0.0052,"refine":0.0011,"integrate":0.0019}'


def image_lines(run_id: int, trial_id: int, images: int, hit_rate: float, t0: float):
    """One run's image rows as LOAD DATA text, in ``IMAGE_COLUMNS`` order."""
    rng = random.Random(run_id)
    for event in range(images):
        hit = rng.random() < hit_rate
        indexed = hit and rng.random() < 0.6
        status = "integrated" if indexed else ("hit" if hit else "miss")
        reason = (
            ""
            if indexed
            else ("not indexed: no lattice" if hit else f"miss: {rng.randrange(10)} spots < 10")
        )
        cell = (f"{79.1 + rng.gauss(0, 0.3):.3f}\t{79.1 + rng.gauss(0, 0.3):.3f}\t{38.4 + rng.gauss(0, 0.2):.3f}"
                "\t90\t90\t90") if indexed else "0\t0\t0\t0\t0\t0"  # fmt: skip
        yield (
            f"{run_id}\t{trial_id}\t{event // 1000}\t{event % 1000}\t{int(hit)}\t"
            f"{rng.randrange(20, 300) if hit else rng.randrange(10)}\t{int(indexed)}\t"
            f"{150 * indexed}\t{220 * indexed}\t{status}\t{reason}\t{event % 64}\tnid{event % 16:06d}\t"
            f"{t0 + 60 + event / 120:.6f}\t{TIMINGS}\t{t0 + event / 120:.6f}\t{int(rng.random() < 0.05)}\t"
            f"{(1.8 + rng.random() * 2) if hit else 0:.3f}\t{cell}"
        )


def load_images(database: str, lines: list[str], tmp: str) -> None:
    """``LOAD DATA INFILE`` of the lines (the server reads the file: no client in the loop)."""
    path = f"{tmp}.tsv"
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.chmod(path, 0o644)  # read by the mysqld user
    with pymysql.connect(**MARIADB, database=database) as conn, conn.cursor() as cursor:
        cursor.execute(
            f"LOAD DATA INFILE %s INTO TABLE images ({','.join(IMAGE_COLUMNS)})", (path,)
        )
        conn.commit()
    os.unlink(path)


def shells(cc: float, completeness: float) -> list[dict]:
    edges = [20.0, 5.0, 4.0, 3.5, 3.1, 2.8, 2.6, 2.4, 2.25, 2.1, 2.0]
    return [
        {"d_max": hi, "d_min": lo, "cc_half": cc * (1.2 - i / 10), "completeness": completeness,
         "multiplicity": 3.0, "mean_i_over_sigma": 8.0 - 0.7 * i, "n_unique": 900}
        for i, (hi, lo) in enumerate(zip(edges, edges[1:]))
    ]  # fmt: skip


def fill(url: str, database: str, runs: int, images: int) -> int:
    """The beamtime; returns the trial id."""
    t_fill = time.perf_counter()
    with ResultsDB(url) as db:
        trial = db.ensure_trial("bench", {"spotfinder": {"snr": 6.0}})
        lines: list[str] = []
        t0 = 1.7e9
        for i in range(runs):
            sample = SAMPLES[i // 100 % len(SAMPLES)]
            run_id = db.ensure_run(EXPERIMENT, f"r{i + 1:04d}", concluded=t0 + 900)
            db.tag_run(run_id, sample)
            lines.extend(image_lines(run_id, trial, images, 0.2 + 0.1 * (i % 5), t0))
            if i < runs - 1 or i == 0:  # the last run is still going: no summary, no merge
                db.record_job(run_id, trial, "perlmutter", f"{1000 + i}", "COMPLETED")
                db.record_run_summary(run_id, trial, "complete", {"images": images}, {}, t0 + 1000)
                overall = {"images": int(images * 0.1), "cc_half": 0.3, "cc_star": 0.7,
                           "error_model": {"a": 1.1, "b": 0.02}}  # fmt: skip
                db.record_merge_stats(trial, overall, shells(0.3, 0.4), run_id=run_id)
                db.record_pipeline_state(run_id, trial, "published")
            if len(lines) >= RUNS_PER_FILE * images:
                load_images(database, lines, f"/tmp/{database}")
                lines.clear()
            t0 += 1200
        if lines:
            load_images(database, lines, f"/tmp/{database}")
        for sample in SAMPLES[:2]:
            dataset = db.ensure_dataset(EXPERIMENT, sample, [sample])
            db.record_merge_stats(
                trial, {"cc_half": 0.9, "images": 10_000}, shells(0.6, 0.99), dataset_id=dataset
            )
    print(f"filled {runs} runs × {images} images in {time.perf_counter() - t_fill:.0f} s")
    return trial


def endpoints(db: ResultsDB, trial: int) -> dict[str, callable]:
    """name -> a function giving the path of one request (random run or dataset)."""
    run_ids = [int(r[0]) for r in db._select("SELECT id FROM runs")]
    dataset = db.datasets(EXPERIMENT)[0]["id"]
    exp = f"experiment={EXPERIMENT}&trial_id={trial}"

    def run(path: str):
        return lambda: path.format(run=random.choice(run_ids))

    return {
        "page /": lambda: f"/?{exp}",
        "page /run": run(f"/run?run_id={{run}}&trial_id={trial}"),
        "page /progress": lambda: f"/progress?{exp}&dataset_id={dataset}",
        "page /timeline": lambda: f"/timeline?{exp}",
        "json /api/runs": lambda: f"/api/runs?{exp}",
        "json /api/runs/{id}/progress": run(f"/api/runs/{{run}}/progress?trial_id={trial}"),
        "json /api/runs/{id}/view": run(f"/api/runs/{{run}}/view?trial_id={trial}"),
        "json /api/datasets": lambda: f"/api/datasets?{exp}",
        "json /api/datasets/{id}/progress": lambda: f"/api/datasets/{dataset}/progress?{exp}",
        "json /api/timeline": lambda: f"/api/timeline?{exp}",
        "json /api/runs/{id}/weather": run(f"/api/runs/{{run}}/weather?trial_id={trial}"),
    }


def percentiles(seconds: list[float]) -> tuple[float, float]:
    """(p50, p95) of request seconds."""
    p95 = statistics.quantiles(seconds, n=20)[-1] if len(seconds) > 1 else seconds[0]
    return statistics.median(seconds), p95


def pngs_before(url: str, trial: int, repeats: int) -> None:
    """The baseline: the weather and per-shell PNGs the pages loaded before (read and drawn as
    ``/plots/*.png`` did, matplotlib already imported), on random runs."""
    import io
    import tempfile
    from pathlib import Path

    from kernels.io.weather import plot_weather
    from kernels.merging.shells_plot import save_figure, shells_figure

    with ResultsDB(url, read_only=True) as db, tempfile.TemporaryDirectory() as tmp:
        run_ids = [int(r[0]) for r in db._select("SELECT id FROM runs")]
        dataset = db.datasets(EXPERIMENT)[0]["id"]

        def weather() -> None:
            plot_weather(db.weather(random.choice(run_ids), trial), Path(tmp) / "w.png")

        def shells_png() -> None:
            stats = db.merge_stats(trial, dataset_id=dataset)
            save_figure(shells_figure(stats["shells"]), io.BytesIO(), dpi=90)

        for name, draw in (("weather.png", weather), ("shells.png", shells_png)):
            draw()  # fonts and the Agg backend loaded, as in a running api-server
            seconds = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                draw()
                seconds.append(time.perf_counter() - t0)
            p50, p95 = percentiles(seconds)
            print(f"{'baseline png ' + name:34s} {p50:7.3f} {p95:7.3f} {GOAL_S:7.1f}")
    print(f"load {os.getloadavg()}")


def time_endpoints(url: str, trial: int, repeats: int) -> None:
    app = create_app(url)
    app.dependency_overrides[api_user] = app.dependency_overrides[page_user] = lambda: "bench"
    client = TestClient(app, base_url="http://127.0.0.1")
    with ResultsDB(url, read_only=True) as db:
        paths = endpoints(db, trial)
    print(f"{'endpoint':34s} {'p50 s':>7s} {'p95 s':>7s} {'goal s':>7s}  ok")
    for name, path in paths.items():
        seconds = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            response = client.get(path())
            seconds.append(time.perf_counter() - t0)
            assert response.status_code == 200, (name, response.status_code, response.text[:300])
        p50, p95 = percentiles(seconds)
        print(f"{name:34s} {p50:7.3f} {p95:7.3f} {GOAL_S:7.1f}  "
              f"{'yes' if p95 <= GOAL_S else 'NO'}")  # fmt: skip


# The runs table before migration 5: one aggregate over every image row of the experiment.
BEFORE_RUN_TABLE = """SELECT r.id, r.name, r.concluded, s.status, s.finished,
      (SELECT j.state FROM jobs j WHERE j.run_id=r.id AND j.trial_id=? ORDER BY j.id DESC LIMIT 1),
      COUNT(i.event), SUM(i.hit), SUM(i.is_indexed), SUM(CASE WHEN i.n_integrated>0 THEN 1 ELSE 0 END)
   FROM runs r JOIN experiments e ON e.id=r.experiment_id
   LEFT JOIN run_summaries s ON s.run_id=r.id AND s.trial_id=?
   LEFT JOIN images i ON i.run_id=r.id AND i.trial_id=?
   WHERE e.name=? GROUP BY r.id, r.name, r.concluded, s.status, s.finished ORDER BY r.name"""


# Ours before migration 8: each run's latest job found by scanning every job row.
NO_JOBS_INDEX = """SELECT r.id, r.name, r.created, r.concluded, s.status, s.finished,
      (SELECT j.state FROM jobs j IGNORE INDEX (jobs_run_trial) WHERE j.run_id=r.id AND j.trial_id=?
       ORDER BY j.id DESC LIMIT 1), s.n_images, s.n_hits, s.n_indexed, s.n_integrated
   FROM runs r JOIN experiments e ON e.id=r.experiment_id
   LEFT JOIN run_summaries s ON s.run_id=r.id AND s.trial_id=?
   WHERE e.name=? ORDER BY r.name"""


def median_seconds(call, repeats: int) -> float:
    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - t0)
    return statistics.median(seconds)


def runs_table_before_and_now(url: str, trial: int, repeats: int) -> None:
    """Median seconds of the runs-table query: the aggregate of before, the frozen counts
    without the jobs index, and ours."""
    with ResultsDB(url, read_only=True) as db:
        before = median_seconds(
            lambda: db._select(BEFORE_RUN_TABLE, (trial, trial, trial, EXPERIMENT)), repeats
        )
        unindexed = median_seconds(
            lambda: db._select(NO_JOBS_INDEX, (trial, trial, EXPERIMENT)), 5 * repeats
        )
        ours = median_seconds(lambda: db.run_table(EXPERIMENT, trial), 5 * repeats)
    print(f"runs table query, median: before (aggregate of every image row) {before:.3f} s, "
          f"frozen counts without the jobs index {unindexed:.3f} s, ours {ours:.3f} s; "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip


def runs_json_with_and_without(url: str, trial: int, rounds: int = 5, per_round: int = 10) -> None:
    """``/api/runs`` through the app with migration 8's jobs index and without it (dropped and
    made again between rounds, so both meet the same load), and the generic JSON encoder the
    route no longer runs, timed on the same payload."""
    from fastapi.encoders import jsonable_encoder

    app = create_app(url)
    app.dependency_overrides[api_user] = lambda: "bench"
    client = TestClient(app, base_url="http://127.0.0.1")
    path = f"/api/runs?experiment={EXPERIMENT}&trial_id={trial}"
    seconds: dict[str, list[float]] = {"with the index": [], "without": []}
    with pymysql.connect(**MARIADB, database=url.rsplit("/", 1)[1], autocommit=True) as conn:
        cursor = conn.cursor()
        for _ in range(rounds):
            for name in seconds:
                if name == "without":
                    cursor.execute("DROP INDEX jobs_run_trial ON jobs")
                for _ in range(per_round):
                    t0 = time.perf_counter()
                    client.get(path)
                    seconds[name].append(time.perf_counter() - t0)
                if name == "without":
                    cursor.execute("CREATE INDEX jobs_run_trial ON jobs (run_id, trial_id, id)")
    for name, values in seconds.items():
        p95 = statistics.quantiles(values, n=20)[-1]
        print(f"/api/runs {name:15s} p50 {statistics.median(values):.3f} s  p95 {p95:.3f} s")
    payload = client.get(path).json()
    encoder = median_seconds(lambda: jsonable_encoder(payload), 20)
    print(
        f"FastAPI's jsonable_encoder of that payload (no longer run): {encoder:.3f} s; "
        f"load {os.getloadavg()[0]:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--keep", help="database name to keep (and reuse when it exists)")
    parser.add_argument("--only-runs", action="store_true", help="time only the /api/runs parts")
    args = parser.parse_args()
    name = args.keep or f"sfx_dashbench_{os.getpid()}"
    admin = pymysql.connect(**MARIADB, autocommit=True)
    cursor = admin.cursor()
    exists = cursor.execute("SHOW DATABASES LIKE %s", (name,))
    url = f"mysql://root@127.0.0.1:3306/{name}"
    try:
        if not exists:
            cursor.execute(f"CREATE DATABASE {name}")
            trial = fill(url, name, args.runs, args.images)
        else:
            trial = ResultsDB(url).trials()[0]["id"]
        cursor.execute("SELECT @@innodb_buffer_pool_size")
        pool = cursor.fetchone()[0] / 2**20
        print(
            f"MariaDB {admin.get_server_info()}, buffer pool {pool:.0f} MiB, shared 2-core machine"
        )
        if not args.only_runs:
            time_endpoints(url, trial, args.repeats)
            pngs_before(url, trial, args.repeats)
        runs_table_before_and_now(url, trial, 3)
        runs_json_with_and_without(url, trial)
    finally:
        if not args.keep:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()


if __name__ == "__main__":
    main()
