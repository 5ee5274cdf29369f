"""The MPI driver with real mpiexec ranks, real signals and the real MariaDB."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import gemmi
import numpy as np
import pytest

from kernels.io.checkpoint import read_checkpoint
from kernels.process import process_run
from kernels.resultsdb import ResultsDB
from tests.kernels.conftest import BIG_RUN_IMAGES

REPO = Path(__file__).resolve().parents[3]


def fates(out: Path) -> list[dict]:
    """images.csv without the timing columns (the only thing that differs between runs)."""
    with open(out / "images.csv") as handle:
        return [
            {k: v for k, v in row.items() if not k.startswith("t_")}
            for row in csv.DictReader(handle)
        ]


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def db_ids(url: str, run_dir: Path):
    db = ResultsDB(url)
    return (
        db,
        db.ensure_run(run_dir.parent.parent.name, run_dir.name),
        db.ensure_trial("default", {}),
    )


def db_trial(db: ResultsDB, run_dir: Path):
    return db.ensure_run(run_dir.parent.parent.name, run_dir.name), db.get_trial("default")["id"]


def distinct_rows(db: ResultsDB, run_id: int, trial_id: int) -> tuple[int, int]:
    ((n, distinct),) = db._select(
        "SELECT COUNT(*), COUNT(DISTINCT chunk*100000+event) FROM images "
        "WHERE run_id=? AND trial_id=?",
        (run_id, trial_id),
    )
    return int(n), int(distinct)


@pytest.fixture(scope="module")
def reference(small_run, tmp_path_factory):
    """The single-process result of the small run (the lead's process_run)."""
    out = tmp_path_factory.mktemp("reference")
    process_run(small_run, out)
    return out


def test_three_ranks_match_one_process_and_log_every_image(
    small_run, reference, mariadb_url, mariadb_admin, tmp_path, mpi_process
):
    out = tmp_path / "out"
    database = mariadb_url.rsplit("/", 1)[1]
    peak, running = [0], threading.Event()
    running.set()

    def watch_connections():
        with mariadb_admin() as admin, admin.cursor() as cur:
            while running.is_set():
                cur.execute(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB=%s", (database,)
                )
                peak[0] = max(peak[0], cur.fetchone()[0])
                time.sleep(0.02)

    watcher = threading.Thread(target=watch_connections)
    watcher.start()
    try:
        done = mpi_process(
            3,
            small_run,
            out,
            "--db",
            mariadb_url,
            "--trial",
            "default",
            "--cache-dir",
            str(tmp_path / "node"),
        )
    finally:
        running.clear()
        watcher.join()
    assert done.returncode == 0, done.stderr
    assert peak[0] == 1  # one DB connection for the whole job
    assert fates(out) == fates(reference)
    assert (out / "integrated.h5").read_bytes() == (reference / "integrated.h5").read_bytes()
    s = summary(out)
    assert s["status"] == "complete" and s["ranks"] == 3 and s["images"] == 40
    assert 0 < s["timings"]["db_write_seconds"] < s["timings"]["wall_seconds"]
    db = ResultsDB(mariadb_url)
    run_id, trial_id = db_trial(db, small_run)
    counts = db.image_counts(run_id, trial_id)
    assert (counts["images"], counts["hits"], counts["indexed"]) == (40, s["hits"], s["indexed"])
    assert distinct_rows(db, run_id, trial_id) == (40, 40)
    assert db.run_summary(run_id, trial_id)["status"] == "complete"
    images = db.images(run_id, trial_id)  # the run view's per-image details, lysozyme's cell
    refined = [r for r in images if r["status"] in ("refined", "integrated")]
    assert refined and all(r["cell_c"] == pytest.approx(38.4, rel=0.03) for r in refined)
    assert all(r["cell_a"] == 0.0 for r in images if r["status"] in ("miss", "hit", "indexed"))
    assert all(1.0 < r["d_est"] < 20.0 for r in images if r["hit"])
    weather = db.weather(run_id, trial_id)
    assert {rank for rank, *_ in weather} == {1, 2}  # rank 0 only produces and logs
    assert {stage for *_, stage in weather} >= {"read", "calibrate", "spotfind"}
    assert (out / "weather.png").stat().st_size > 0
    assert not list((tmp_path / "node").glob("*.pkl"))  # the node-local caches were gathered


def test_one_rank_does_everything(small_run, reference, sqlite_url, tmp_path, mpi_process):
    out = tmp_path / "out"
    done = mpi_process(1, small_run, out, "--db", sqlite_url)
    assert done.returncode == 0, done.stderr
    assert fates(out) == fates(reference)
    assert (out / "integrated.h5").read_bytes() == (reference / "integrated.h5").read_bytes()
    db = ResultsDB(sqlite_url)
    assert distinct_rows(db, *db_trial(db, small_run)) == (40, 40)


def test_bad_run_is_a_clear_error_on_every_rank(tmp_path, mpi_process):
    done = mpi_process(3, tmp_path / "no-such-run", tmp_path / "out", timeout=60)
    assert done.returncode == 2
    assert "no-such-run: run directory does not exist" in done.stderr


def test_corrupt_checkpoint_restarts_the_run_cleanly(
    small_run, reference, sqlite_url, tmp_path, mpi_process
):
    out = tmp_path / "out"
    assert mpi_process(2, small_run, out, "--db", sqlite_url).returncode == 0
    checkpoint = out / "checkpoint.json"
    text = checkpoint.read_text()
    damaged = text.replace("[0, 5]", "[0, 6]", 1)  # one finished item altered
    assert damaged != text
    checkpoint.write_text(damaged)
    again = mpi_process(2, small_run, out, "--db", sqlite_url)
    assert again.returncode == 0, again.stderr
    assert (
        "checksum mismatch" in again.stderr and "restarting run r0001 from scratch" in again.stderr
    )
    assert (out / "checkpoint.json.corrupt").exists()
    fresh = read_checkpoint(checkpoint, "r0001", "default", read_params_sha(out))
    assert fresh.sessions == 1 and len(fresh.done) == 40 and len(fresh.parts) == 1
    assert fates(out) == fates(reference)
    db = ResultsDB(sqlite_url)
    assert distinct_rows(db, *db_trial(db, small_run)) == (40, 40)


def read_params_sha(out: Path) -> str:
    return json.loads((out / "checkpoint.json").read_text())["body"]["params_sha256"]


def merged(out: Path, tmp_path: Path, name: str) -> gemmi.Mtz:
    pytest.importorskip("kernels.merging.cli")
    mtz = tmp_path / f"{name}.mtz"
    done = subprocess.run(
        [sys.executable, "-m", "kernels", "merge", "--results", str(out), "--out", str(mtz)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return gemmi.read_mtz_file(str(mtz))


def test_sigterm_mid_run_then_resume_is_identical(
    big_run, mariadb_url, sqlite_url, tmp_path, process_cmd, mpi_process
):
    reference = tmp_path / "reference"
    assert mpi_process(3, big_run, reference, "--db", sqlite_url).returncode == 0

    out = tmp_path / "out"
    cmd = process_cmd(3, big_run, out, "--db", mariadb_url)
    job = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = ResultsDB(mariadb_url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait for live progress in the DB, then preempt
        try:
            if db.image_counts(*db_trial(db, big_run))["images"] >= 20:
                break
        except LookupError:
            pass
        time.sleep(0.2)
    job.send_signal(signal.SIGTERM)  # mpiexec forwards it to every rank, as Slurm --signal would
    stdout, stderr = job.communicate(timeout=60)
    assert job.returncode == 5, stderr  # preempted: not 0, so no center records it COMPLETED
    first = summary(out)
    assert first["status"] == "preempted" and first["reason"] == "SIGTERM", first
    assert 20 <= first["images_done"] < BIG_RUN_IMAGES
    run_id, trial_id = db_trial(db, big_run)
    assert (
        distinct_rows(db, run_id, trial_id) == (first["images_done"],) * 2
    )  # flushed, nothing twice

    resumed = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    final = summary(out)
    assert (
        final["status"] == "complete"
        and final["sessions"] == 2
        and final["images"] == BIG_RUN_IMAGES
    )
    assert fates(out) == fates(reference)
    assert (out / "integrated.h5").read_bytes() == (reference / "integrated.h5").read_bytes()
    assert distinct_rows(db, run_id, trial_id) == (BIG_RUN_IMAGES, BIG_RUN_IMAGES)
    a, b = merged(out, tmp_path, "resumed"), merged(reference, tmp_path, "uninterrupted")
    assert [c.label for c in a.columns] == [c.label for c in b.columns]
    assert np.array_equal(np.array(a, copy=False), np.array(b, copy=False), equal_nan=True)


def test_rerun_of_a_finished_run_processes_nothing(
    small_run, reference, sqlite_url, tmp_path, mpi_process
):
    out = tmp_path / "out"
    assert mpi_process(2, small_run, out, "--db", sqlite_url).returncode == 0
    parts = sorted((out / "parts").iterdir())
    again = mpi_process(2, small_run, out, "--db", sqlite_url)
    assert again.returncode == 0, again.stderr
    assert sorted((out / "parts").iterdir()) == parts  # nothing new was processed
    assert summary(out)["sessions"] == 2 and summary(out)["images"] == 40
    assert fates(out) == fates(reference)


def test_db_lost_mid_run_is_logged_by_the_next_run(
    big_run, mariadb_url, db_proxy, tmp_path, process_cmd
):
    """The DB vanishes for longer than the retry window: processing completes, exit 3, rows kept;
    the same command with the DB back logs every row exactly once."""
    out = tmp_path / "out"
    via_proxy = mariadb_url.replace(":3306", f":{db_proxy.port}")
    cmd = process_cmd(3, big_run, out, "--db", via_proxy)
    env = {**os.environ, "SFXFLOW_DB_RETRY_SECONDS": "1"}
    job = subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    db = ResultsDB(mariadb_url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if db.image_counts(*db_trial(db, big_run))["images"] >= 10:
                break
        except LookupError:
            pass
        time.sleep(0.1)
    db_proxy.cut()
    stdout, stderr = job.communicate(timeout=120)
    assert job.returncode == 3, stderr
    assert "unreachable" in stderr and "logs them later" in stderr
    assert summary(out)["status"] == "complete" and summary(out)["images"] == BIG_RUN_IMAGES
    run_id, trial_id = db_trial(db, big_run)
    assert distinct_rows(db, run_id, trial_id)[0] < BIG_RUN_IMAGES

    db_proxy.restore()
    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert again.returncode == 0, again.stderr
    assert distinct_rows(db, run_id, trial_id) == (BIG_RUN_IMAGES, BIG_RUN_IMAGES)
    assert db.run_summary(run_id, trial_id)["status"] == "complete"


def test_experiment_option_names_the_experiment_rows_are_logged_under(
    small_run, sqlite_url, tmp_path, mpi_process
):
    """The pipeline's experiment name wins over the run folder's grandparent (an HPC folder name)."""
    assert small_run.parent.parent.name != "p12345"
    done = mpi_process(2, small_run, tmp_path / "out", "--db", sqlite_url, "--experiment", "p12345")
    assert done.returncode == 0, done.stderr
    db = ResultsDB(sqlite_url)
    assert db.experiments() == ["p12345"]
    assert distinct_rows(
        db, db.ensure_run("p12345", small_run.name), db.get_trial("default")["id"]
    ) == (40, 40)


def test_db_unreachable_at_start_is_logged_by_the_next_run(
    small_run, reference, mariadb_url, db_proxy, tmp_path, process_cmd
):
    """No DB when the job starts: it processes everything anyway, exits 3 with the rows kept;
    the same command with the DB back logs every row exactly once."""
    out = tmp_path / "out"
    cmd = process_cmd(3, small_run, out, "--db", mariadb_url.replace(":3306", f":{db_proxy.port}"))
    env = {**os.environ, "SFXFLOW_DB_RETRY_SECONDS": "1"}
    db_proxy.cut()
    cut = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert cut.returncode == 3, cut.stderr
    assert "unreachable at the start of the job" in cut.stderr and "logs them later" in cut.stderr
    assert "Traceback" not in cut.stderr
    assert summary(out)["status"] == "complete" and fates(out) == fates(reference)
    assert json.loads((out / "checkpoint.json").read_text())["body"]["logged"] is False
    db = ResultsDB(mariadb_url)
    assert db.experiments() == []  # nothing reached the DB

    db_proxy.restore()
    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert again.returncode == 0, again.stderr
    run_id, trial_id = db_trial(db, small_run)
    assert distinct_rows(db, run_id, trial_id) == (40, 40)
    assert db.run_summary(run_id, trial_id)["status"] == "complete"
    assert json.loads((out / "checkpoint.json").read_text())["body"]["logged"] is True


@pytest.mark.parametrize("keep", [0.0, 0.5], ids=["emptied", "torn"])
def test_part_torn_by_a_crash_is_reprocessed_not_skipped(
    small_run, reference, sqlite_url, tmp_path, mpi_process, keep
):
    """A part the checkpoint trusts but a crash left empty or truncated: the rerun names the file and
    processes its images again, so the outputs are whole, never silently missing images."""
    out = tmp_path / "out"
    assert mpi_process(3, small_run, out, "--db", sqlite_url).returncode == 0
    torn = sorted((out / "parts").glob("*.pkl"))[0]  # one part per worker that got work
    with open(torn, "r+b") as handle:
        handle.truncate(int(torn.stat().st_size * keep))
    again = mpi_process(3, small_run, out, "--db", sqlite_url)
    assert again.returncode == 0, again.stderr
    assert f"part {torn}:" in again.stderr and "processed again" in again.stderr
    assert (out / "parts" / (torn.name + ".corrupt")).exists()
    s = summary(out)
    assert s["status"] == "complete" and s["images"] == 40 and s["sessions"] == 2
    assert fates(out) == fates(reference)
    assert (out / "integrated.h5").read_bytes() == (reference / "integrated.h5").read_bytes()
    db = ResultsDB(sqlite_url)
    assert distinct_rows(db, *db_trial(db, small_run)) == (40, 40)
