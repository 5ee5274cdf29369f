"""The live job (``process --live``) with real mpiexec ranks on a run whose chunks land one by
one, as the DAQ and the per-chunk transfer deliver them: identical to post-run processing."""

from __future__ import annotations

import dataclasses
import json
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import gemmi
import numpy as np
import pytest

from facility.beamline.simulate import SimulationParams, simulate_experiment
from kernels.driver.feed import LiveFeed, wait_for_first_chunk
from kernels.driver.so_far import RunSoFar
from kernels.io.chunk_marker import chunk_marker_name, write_chunk_marker, write_started
from kernels.io.live_run import ReadyChunks, open_ready, ready_chunks
from kernels.io.marker import write_marker
from kernels.io.reflections import read_integrated
from kernels.merging.cli import merge_results
from kernels.merging.running import RunningMerge
from kernels.process import process_run
from kernels.resultsdb import ResultsDB
from kernels.stages.pipeline import ProcessingParams
from tests.kernels.conftest import REPO
from tests.kernels.driver.test_mpi_driver import db_trial, distinct_rows, fates, summary

CHUNKS, PER_CHUNK = 4, 6


@pytest.fixture(scope="module")
def chunked_run(tmp_path_factory):
    """A simulated run of 4 chunks of 6 images, and its post-run result (one process)."""
    root = tmp_path_factory.mktemp("chunked")
    params = dataclasses.replace(SimulationParams(), chunk_size=PER_CHUNK)
    simulate_experiment(
        root / "exp", 1, CHUNKS * PER_CHUNK, seed=5, params=params, workers=1, log=lambda *_: None
    )
    run = root / "exp" / "runs" / "r0001"
    reference = root / "reference"
    process_run(run, reference)
    return run, reference


def deliver(source: Path, run: Path, chunks, delay: float = 0.0, conclude: bool = True):
    """What the DAQ and the transfer do at the center: each chunk's files, then its marker;
    the run marker last."""
    run.mkdir(parents=True, exist_ok=True)
    if not (run / "calibration.h5").exists():
        shutil.copy(source / "calibration.h5", run)
        write_started(run, 1, 120.0)
    for chunk in chunks:
        time.sleep(delay)
        names = [f"r0001-c{chunk:02d}.h5", f"r0001-c{chunk:02d}.idx.h5"]
        for name in names:
            shutil.copy(source / name, run)
        write_chunk_marker(run, 1, chunk, PER_CHUNK, names)
    if conclude:
        time.sleep(delay)
        write_marker(run, 1)


def live(process_cmd, run: Path, out: Path, db: str, *extra: str) -> list[str]:
    return process_cmd(2, run, out, "--db", db, "--live", "--merge-every-images", "2", *extra)


def same_as_post_run(out: Path, reference: Path, db: ResultsDB, run: Path) -> None:
    assert fates(out) == fates(reference)
    assert (out / "integrated.h5").read_bytes() == (reference / "integrated.h5").read_bytes()
    assert distinct_rows(db, *db_trial(db, run)) == (CHUNKS * PER_CHUNK,) * 2


def test_chunks_landing_one_by_one_give_the_post_run_result(
    chunked_run, mariadb_url, tmp_path, process_cmd
):
    source, reference = chunked_run
    run, out = tmp_path / "exp" / "runs" / "r0001", tmp_path / "out"
    job = subprocess.Popen(
        live(process_cmd, run, out, mariadb_url), cwd=REPO, stderr=subprocess.PIPE, text=True
    )
    deliver(source, run, [0], conclude=False)
    db = ResultsDB(mariadb_url)
    seen_while_acquiring = 0
    deadline = time.monotonic() + 60
    while not seen_while_acquiring and time.monotonic() < deadline:
        try:  # rows of chunk 0 reach the DB while the run is still being acquired
            seen_while_acquiring = db.image_counts(*db_trial(db, run))["images"]
        except LookupError:
            pass
        time.sleep(0.2)
    assert 0 < seen_while_acquiring <= PER_CHUNK and not (run / "CONCLUDED.json").exists()
    deliver(source, run, range(1, CHUNKS), delay=0.3)
    _, stderr = job.communicate(timeout=120)
    assert job.returncode == 0, stderr
    assert summary(out)["status"] == "complete"
    same_as_post_run(out, reference, db, run)

    so_far = db.run_so_far(*db_trial(db, run))
    batch = RunningMerge(ProcessingParams().crystal.symmetry())
    for image in integrated_images(out):
        batch.add(*image)
    expected = batch.statistics()  # the same sums over integrated.h5 at once
    assert so_far["final"] and so_far["images_merged"] == expected["images_merged"] > 0
    for key in ("observations", "n_unique"):
        assert so_far[key] == expected[key]
    for key in ("completeness", "multiplicity", "mean_i_over_sigma", "cc_half"):
        assert so_far[key] == pytest.approx(expected[key], rel=1e-9), key

    live_mtz, post_mtz = tmp_path / "live" / "m.mtz", tmp_path / "post" / "m.mtz"
    merge_results([out], live_mtz)
    merge_results([reference], post_mtz)
    a, b = gemmi.read_mtz_file(str(live_mtz)), gemmi.read_mtz_file(str(post_mtz))
    assert np.array_equal(np.array(a, copy=False), np.array(b, copy=False), equal_nan=True)


def test_one_rank_live_job_assembles_from_the_records_it_kept_as_post_run(
    chunked_run, sqlite_url, tmp_path, process_cmd
):
    """One rank produces and works: the records it keeps (not the parts read back) make the
    same outputs as post-run processing."""
    source, reference = chunked_run
    run, out = tmp_path / "exp" / "runs" / "r0001", tmp_path / "out"
    feeder = threading.Thread(target=deliver, args=(source, run, range(CHUNKS), 0.3))
    feeder.start()
    cmd = process_cmd(1, run, out, "--db", sqlite_url, "--live")
    job = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    feeder.join()
    assert job.returncode == 0, job.stderr
    same_as_post_run(out, reference, ResultsDB(sqlite_url), run)


def test_sigterm_mid_run_then_resubmit_follows_the_run_to_the_same_result(
    chunked_run, sqlite_url, tmp_path, process_cmd
):
    source, reference = chunked_run
    run, out = tmp_path / "exp" / "runs" / "r0001", tmp_path / "out"
    deliver(source, run, [0, 1], conclude=False)
    cmd = live(process_cmd, run, out, sqlite_url)
    job = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = ResultsDB(sqlite_url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if db.image_counts(*db_trial(db, run))["images"] >= 5:
                break
        except LookupError:
            pass
        time.sleep(0.1)
    job.send_signal(signal.SIGTERM)
    _, stderr = job.communicate(timeout=60)
    assert job.returncode == 5, stderr  # preempted: not 0, so no center records it COMPLETED
    first = summary(out)
    assert first["status"] == "preempted" and first["reason"] == "SIGTERM", first
    assert distinct_rows(db, *db_trial(db, run)) == (first["images_done"],) * 2

    feeder = threading.Thread(target=deliver, args=(source, run, [2, 3], 0.5))
    feeder.start()  # the run goes on while the resubmitted job starts
    resumed = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    feeder.join()
    assert resumed.returncode == 0, resumed.stderr
    final = summary(out)
    assert final["status"] == "complete" and final["sessions"] == 2
    same_as_post_run(out, reference, db, run)


def test_no_run_marker_stalls_with_what_was_processed_published_and_mergeable(
    chunked_run, sqlite_url, tmp_path, process_cmd
):
    source, reference = chunked_run
    run, out = tmp_path / "exp" / "runs" / "r0001", tmp_path / "out"
    deliver(source, run, [0, 1], conclude=False)  # the DAQ crashed after chunk 1
    cmd = live(process_cmd, run, out, sqlite_url, "--live-timeout", "2")
    stalled = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert stalled.returncode == 4, stalled.stderr
    s = summary(out)
    assert s["status"] == "stalled" and s["images"] == 2 * PER_CHUNK, s
    db = ResultsDB(sqlite_url)
    run_id, trial_id = db_trial(db, run)
    assert distinct_rows(db, run_id, trial_id) == (2 * PER_CHUNK,) * 2
    assert db.run_summary(run_id, trial_id)["status"] == "stalled"
    assert not db.run_so_far(run_id, trial_id)["final"]
    _, images, _ = read_integrated(out / "integrated.h5")
    assert set(images["chunk"]) <= {0, 1}
    post = [r for r in fates(reference) if int(r["chunk"]) < 2]
    assert fates(out) == post
    stats = merge_results([out], tmp_path / "so-far" / "m.mtz")
    assert stats["images"] == len(images["event"]) > 0


def test_malformed_chunk_marker_is_a_clear_error_naming_it(
    chunked_run, sqlite_url, tmp_path, process_cmd
):
    source, _ = chunked_run
    run, out = tmp_path / "exp" / "runs" / "r0001", tmp_path / "out"
    deliver(source, run, [0], conclude=False)
    bad = run / chunk_marker_name("r0001", 0)
    bad.write_text(json.dumps({"run": 1, "run_name": "r0001", "chunk": 0}))
    done = subprocess.run(
        live(process_cmd, run, out, sqlite_url, "--live-timeout", "5"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"{bad}: chunk marker lacks ['closed_at', 'events', 'files']" in done.stderr


def integrated_images(result_dir: Path):
    """(chunk, event, hkl, intensity, sigma, partiality) of each image of an integrated.h5."""
    _, images, refl = read_integrated(result_dir / "integrated.h5")
    for i, (chunk, event) in enumerate(zip(images["chunk"], images["event"])):
        sel = refl["image"] == i
        yield (int(chunk), int(event), refl["hkl"][sel]) + tuple(
            refl[k][sel] for k in ("intensity", "sigma", "partiality")
        )


def test_only_chunks_without_a_gap_are_read_a_late_chunk_ends_a_stall_a_bad_marker_the_feed(
    chunked_run, tmp_path
):
    source, _ = chunked_run
    run = tmp_path / "exp" / "runs" / "r0001"
    assert ready_chunks(run) == ReadyChunks([], False)  # the folder has not reached the center
    assert not wait_for_first_chunk(run, timeout=0.3, poll_seconds=0.1)  # a job then exits 4
    deliver(source, run, [0, 2], conclude=False)
    assert [p.name for p in ready_chunks(run).indexes] == ["r0001-c00.idx.h5"]
    now = [0.0]
    feed = LiveFeed(open_ready(run), timeout=10, poll_seconds=1, clock=lambda: now[0])
    assert feed.poll() == [(0, e) for e in range(PER_CHUNK)] and not feed.ended
    now[0] = 10.0
    assert feed.stalled and feed.ended
    deliver(source, run, [1], conclude=False)  # chunk 1 fills the gap: 1 and 2 are readable
    assert [c for c, _ in feed.poll()] == [1] * PER_CHUNK + [2] * PER_CHUNK
    assert not feed.stalled and not feed.ended
    bad = run / chunk_marker_name("r0001", 3)
    bad.write_text("{")  # torn: the feed stops with the error, what it handed out is kept
    now[0] += 1
    assert feed.poll() == [] and feed.ended and str(bad) in str(feed.error)
    deliver(source, run, [3])  # the marker rewritten whole, then the run marker
    again = LiveFeed(open_ready(run), timeout=10)
    assert len(again.poll()) == CHUNKS * PER_CHUNK and again.concluded and again.ended


def test_running_merge_is_the_same_in_any_order_and_published_on_its_cadence(chunked_run):
    _, reference = chunked_run
    images = list(integrated_images(reference))
    symmetry = ProcessingParams().crystal.symmetry()
    in_order, shuffled = RunningMerge(symmetry), RunningMerge(symmetry)
    assert np.isnan(in_order.statistics()["completeness"])
    for image in images:
        in_order.add(*image)
    now, published = [0.0], []
    so_far = RunSoFar(shuffled, 3, 5.0, [lambda s, final: published.append(s)], lambda: now[0])
    for i in np.random.default_rng(1).permutation(len(images)):
        so_far.add([images[i]])
        so_far.tick()
    assert [s["images_merged"] for s in published] == list(range(3, len(images) + 1, 3))
    a, b = in_order.statistics(), so_far.publish(final=True)
    assert a["n_unique"] == b["n_unique"] > 0 and a["observations"] == b["observations"]
    assert a["multiplicity"] == pytest.approx(a["observations"] / a["n_unique"])
    for key in ("completeness", "mean_i_over_sigma", "cc_half", "d_min"):
        assert b[key] == pytest.approx(a[key], rel=1e-12), key
    so_far.add([images[0]])
    now[0] += 5.0  # one image pending and M seconds gone: due
    so_far.tick()
    assert published[-1]["images_merged"] == len(images) + 1 and so_far.pending == 0
