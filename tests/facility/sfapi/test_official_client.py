"""The official NERSC ``sfapi_client`` package, unchanged, against the emulator.

It runs in a ``python -P`` child (see the ``run_official`` fixture): this project's own
``sfapi_client`` package has the same import name.
"""

from __future__ import annotations

import datetime as dt

import pytest

from facility.sfapi.testing import running_emulator


@pytest.fixture(scope="module")
def official_emu(tmp_path_factory):
    with running_emulator(tmp_path_factory.mktemp("official"), kill_wait=1.0) as emu:
        (emu.root / "global/homes").mkdir(parents=True)
        yield emu


def test_official_status_outages_and_account(official_emu, run_official):
    now = dt.datetime.now(dt.UTC)
    official_emu.admin.schedule_outage(
        "perlmutter",
        now + dt.timedelta(days=1),
        now + dt.timedelta(days=1, hours=4),
        "quarterly maintenance",
    )
    try:
        report = run_official(official_emu, "status")
    finally:
        official_emu.admin.clear_outages()
    assert report == {
        "status": "active",
        "all": ["dtn01", "dtns", "perlmutter"],
        "planned": ["quarterly maintenance"],
        "user": "sfxflow",
    }


def test_official_submit_wait_cancel_and_refused_script(official_emu, run_official):
    report = run_official(official_emu, "jobs")
    assert report["final"] == "COMPLETED"
    assert (report["sacct_state"], report["sacct_name"]) == ("COMPLETED", "official")
    assert report["cancelled"] == "CANCELLED"
    assert report["bad_script"] == "sbatch: error: Invalid time limit specification: 'bogus'"


def test_official_ls_upload_download_and_run(official_emu, run_official):
    report = run_official(official_emu, "files")
    assert report["home_is_dir"] is True
    assert report["names"] == ["official.txt"]
    assert report["text"] == report["run"] == "hello from the official client\n"
    assert report["bytes_len"] == len(report["text"])
    assert "No such file or directory" in report["missing"]
    assert (official_emu.root / "global/homes/official.txt").read_text() == report["text"]
