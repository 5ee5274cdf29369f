"""Per-image logging into MariaDB: batched ImageLogger vs naive one INSERT per image.

Runs both in one go against the real MariaDB (127.0.0.1:3306, a scratch database that is
dropped afterwards) and prints image-rows/s side by side with the ratio, plus the share
of the per-image processing time that logging costs.

    .venv/bin/python bench/db_bench.py [--rows 1000000] [--naive-seconds 5]
"""
from __future__ import annotations

import argparse
import json
import os
import time

import pymysql

from kernels.dblog import ImageLogger, ImageRow
from kernels.resultsdb import IMAGE_COLUMNS, ResultsDB

STAGES = ("read", "calibrate", "spotfind", "index", "refine", "integrate")
PROCESSING_MS_PER_IMAGE = 20.0  # measured by `python -m kernels process` on this machine (summary.json)


def image_rows(n: int, start: int = 0) -> list[ImageRow]:
    """Realistic rows: a quarter hits, most hits integrated, six stage timings each."""
    t0 = time.time()
    return [ImageRow(i // 10_000, i % 10_000, i % 4 == 0, 150 if i % 4 == 0 else 3, i % 4 == 0, 140 if i % 4 == 0 else 0,
                     220 if i % 4 == 0 else 0, "integrated" if i % 4 == 0 else "miss",
                     "" if i % 4 == 0 else "3 spots < 10", i % 64, f"nid{i % 16:06d}", t0 + i * 1e-3,
                     dict(zip(STAGES, (0.0011, 0.0043, 0.0071, 0.0052, 0.0011, 0.0019))))
            for i in range(start, start + n)]


def batched(url: str, run_id: int, trial_id: int, rows: list[ImageRow]) -> dict:
    """The ImageLogger path, timed end to end (encode + all transactions committed)."""
    logger = ImageLogger(ResultsDB(url), run_id, trial_id, batch_rows=50_000, max_rows=1_000_000)
    t0 = time.perf_counter()
    encoded = [logger.encode(row) for row in rows[:100_000]]
    encode_s = (time.perf_counter() - t0) * len(rows) / len(encoded)
    del encoded
    t0 = time.perf_counter()
    logger.add_many(rows)
    logger.close()
    total = time.perf_counter() - t0
    return {"rows_per_s": len(rows) / total, "seconds": total, "encode_s": encode_s}


def pre_encoded(url: str, run_id: int, trial_id: int, rows: list[ImageRow]) -> dict:
    """The logger as rank 0 of the MPI driver uses it: rows arrive encoded by the workers."""
    logger = ImageLogger(ResultsDB(url), run_id, trial_id, batch_rows=50_000, max_rows=1_000_000)
    encoded = [logger.encode(row) for row in rows]  # the workers' share, not timed
    t0 = time.perf_counter()
    for i in range(0, len(encoded), 1000):  # as worker requests deliver them
        logger.add_encoded(encoded[i:i + 1000])
    logger.close()
    total = time.perf_counter() - t0
    return {"rows_per_s": len(rows) / total, "seconds": total}


def naive(url: str, run_id: int, trial_id: int, rows: list[ImageRow], seconds: float) -> dict:
    """One connection per rank, one INSERT + commit per image: how it is usually done first."""
    db = ResultsDB(url)
    sql = db.dialect.sql(f"INSERT INTO images ({','.join(IMAGE_COLUMNS)}) VALUES ({','.join('?' * len(IMAGE_COLUMNS))})")
    connections = {}
    done = 0
    t0 = time.perf_counter()
    for row in rows:
        conn = connections.get(row.rank) or connections.setdefault(row.rank, db.dialect.connect())
        with conn.cursor() as cursor:
            cursor.execute(sql, (run_id, trial_id, row.chunk, row.event, int(row.hit), row.n_spots, int(row.indexed),
                                 row.n_refined, row.n_integrated, row.status, row.reason, row.rank, row.host,
                                 row.t_start, str(row.timings)))
        conn.commit()
        done += 1
        if time.perf_counter() - t0 > seconds:
            break
    total = time.perf_counter() - t0
    for conn in connections.values():
        conn.close()
    return {"rows_per_s": done / total, "seconds": total, "rows": done, "connections": len(connections)}


def load_data_local(url: str, run_id: int, trial_id: int, rows: list[ImageRow], tmp: str) -> float:
    """Server-side ceiling for comparison: the same rows through LOAD DATA LOCAL INFILE (rows/s)."""
    db = ResultsDB(url)
    lines = ["\t".join(map(str, (run_id, trial_id, row.chunk, row.event, int(row.hit), row.n_spots, int(row.indexed),
                                 row.n_refined, row.n_integrated, row.status, row.reason, row.rank, row.host,
                                 repr(row.t_start), json.dumps(row.timings))))
             for row in rows]
    with open(tmp, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    url_ = db.url
    conn = pymysql.connect(host=url_.host, port=url_.port, user=url_.user, database=url_.database, local_infile=True)
    t0 = time.perf_counter()
    with conn.cursor() as cursor:
        cursor.execute(f"LOAD DATA LOCAL INFILE %s IGNORE INTO TABLE images ({','.join(IMAGE_COLUMNS)})", (tmp,))
    conn.commit()
    total = time.perf_counter() - t0
    conn.close()
    db.close()
    os.unlink(tmp)
    return len(rows) / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--naive-seconds", type=float, default=5.0)
    args = parser.parse_args()
    name = f"sfx_bench_{os.getpid()}"
    admin = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    admin.cursor().execute(f"CREATE DATABASE {name}")
    url = f"mysql://root@127.0.0.1:3306/{name}"
    try:
        db = ResultsDB(url)
        trial = db.ensure_trial("bench", {})
        rows = image_rows(args.rows)
        ours = batched(url, db.ensure_run("bench", "batched"), trial, rows)
        shipped = pre_encoded(url, db.ensure_run("bench", "pre-encoded"), trial, rows)
        base = naive(url, db.ensure_run("bench", "naive"), trial, rows, args.naive_seconds)
        ceiling = load_data_local(url, db.ensure_run("bench", "load-data"), trial, rows, f"/tmp/{name}.tsv")
        ratio = ours["rows_per_s"] / base["rows_per_s"]
        print(f"image rows: {args.rows:,}  (MariaDB {admin.get_server_info()}, 2 cores, shared machine)")
        print(f"  batched ImageLogger   : {ours['rows_per_s']:>12,.0f} rows/s  ({ours['seconds']:.2f} s, 1 connection, "
              f"of which encoding {ours['encode_s']:.2f} s)")
        print(f"  same, rows pre-encoded: {shipped['rows_per_s']:>12,.0f} rows/s  ({shipped['seconds']:.2f} s; "
              f"the MPI driver's workers encode, rank 0 only sends)")
        print(f"  naive INSERT per image: {base['rows_per_s']:>12,.0f} rows/s  ({base['rows']:,} rows in "
              f"{base['seconds']:.1f} s, {base['connections']} connections)")
        print(f"  ratio batched/naive   : {ratio:>12,.0f} x")
        print(f"  LOAD DATA LOCAL (ref) : {ceiling:>12,.0f} rows/s  (server-side ceiling, same rows)")
        db_ms = 1e3 / ours["rows_per_s"]
        print(f"  DB time per image     : {db_ms * 1e3:.1f} us = {100 * db_ms / PROCESSING_MS_PER_IMAGE:.3f} % of "
              f"{PROCESSING_MS_PER_IMAGE:.0f} ms processing (goal <= 1 %); goal 1,000,000 rows/s "
              f"{'met' if ours['rows_per_s'] >= 1e6 else 'NOT met'}")
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()


if __name__ == "__main__":
    main()
