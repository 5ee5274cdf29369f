"""Every injected fault, seen through our client: latency, HTTP 5xx, dropped connections, stuck tasks."""

from __future__ import annotations

import logging
import time

import pytest
import requests

from sfapi_client import TransientError
from sfapi_client.jobs import KEY_PREFIX

M = "perlmutter"
STATUS = "/api/v1.2/status"
SUBMIT = "/api/v1.2/compute/jobs/perlmutter"


def jobs_with_key(client, key: str) -> list[str]:
    rows = client._rows(M, True, ["user=alice"])
    return [r["jobid"] for r in rows if r["comment"] == KEY_PREFIX + key]


def test_latency_delays_the_answer(emu, alice):
    emu.admin.inject_fault("latency", path=STATUS, seconds=0.6)
    start = time.monotonic()
    assert alice.status(M)["status"] == "active"
    assert time.monotonic() - start >= 0.6


def test_latency_beyond_client_timeout_is_retried(emu, client_for):
    emu.admin.inject_fault("latency", path=STATUS, seconds=1.5)
    with client_for(emu, timeout=0.5) as client:
        client.user()  # token fetched before the fault matters
        start = time.monotonic()
        assert client.status(M)["status"] == "active"
        assert 0.5 <= time.monotonic() - start < 5


def test_http_503_is_retried_until_it_passes(emu, alice):
    emu.admin.inject_fault("http_error", path=STATUS, status=503, count=2)
    assert alice.status(M)["status"] == "active"


def test_persistent_http_500_gives_transient_error(emu, alice):
    emu.admin.inject_fault("http_error", path=STATUS, status=500, count=None)
    with pytest.raises(TransientError, match="HTTP 500"):
        alice.status(M)
    emu.admin.clear_faults()
    assert alice.status(M)["status"] == "active"


def test_dropped_connection_on_read_is_retried(emu, alice):
    raw = requests.Session()
    emu.admin.inject_fault("drop", path=STATUS, count=1)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        raw.get(emu.base_url + "/status/perlmutter", timeout=5)
    emu.admin.inject_fault("drop", path=STATUS, count=1)
    assert alice.status(M)["status"] == "active"


def test_dropped_submit_response_never_duplicates_the_job(emu, alice, caplog):
    caplog.set_level(logging.INFO, logger="sfapi_client")
    alice.user()
    emu.admin.inject_fault("drop", path=SUBMIT, method="POST", count=1)
    job = alice.submit_job(M, "#!/bin/bash\nsleep 0.2\n", key="dropped-submit")
    assert "ChunkedEncodingError" in caplog.text  # the response was really lost
    assert "already exists" in caplog.text  # found by its key, not submitted again
    assert jobs_with_key(alice, "dropped-submit") == [job.jobid]


def test_http_502_on_submit_is_resubmitted_once(emu, alice, caplog):
    alice.user()
    emu.admin.inject_fault("http_error", path=SUBMIT, method="POST", status=502, count=1)
    job = alice.submit_job(M, "#!/bin/bash\ntrue\n", key="bad-gateway")
    assert "HTTP 502" in caplog.text
    assert jobs_with_key(alice, "bad-gateway") == [job.jobid]


def test_task_stuck_in_new_raises_then_same_key_submits_once(emu, alice):
    emu.admin.inject_fault("task_stuck", path=SUBMIT, count=1)
    with pytest.raises(TransientError, match="still 'new'") as info:
        alice.submit_job(M, "#!/bin/bash\ntrue\n", key="stuck-task", task_timeout=1.0)
    assert info.value.key == "stuck-task"
    assert jobs_with_key(alice, "stuck-task") == []
    job = alice.submit_job(M, "#!/bin/bash\ntrue\n", key="stuck-task")
    assert jobs_with_key(alice, "stuck-task") == [job.jobid]
    tasks = alice._request("GET", "tasks")["tasks"]
    assert "cancelled" in {t["status"] for t in tasks}  # the client cancelled its stuck task


def test_token_endpoint_503_is_retried(emu, client_for):
    emu.admin.inject_fault("http_error", path="/oauth2/token", status=503, count=1)
    with client_for(emu) as client:
        assert client.user() == "alice"


def test_admin_routes_need_the_admin_token(emu):
    r = requests.post(
        emu.base_url.replace("/api/v1.2", "/_emulator/faults"),
        json={"kind": "latency"},
        headers={"Authorization": "Bearer nope"},
    )
    assert r.status_code == 403
    r = requests.post(
        emu.base_url.replace("/api/v1.2", "/_emulator/faults"),
        json={"kind": "x"},
        headers=emu.admin._session.headers,
    )
    assert r.status_code == 422 and "unknown fault kind" in r.text


def test_submit_never_posts_again_while_the_center_is_unreachable(emu, alice):
    alice.user()
    emu.admin.inject_fault("drop", path=SUBMIT, method="POST", count=1)
    emu.admin.inject_fault(
        "http_error", path="/api/v1.2/compute/jobs", method="GET", status=503, count=None
    )
    with pytest.raises(TransientError, match="no job with its key") as info:
        alice.submit_job(M, "#!/bin/bash\ntrue\n")
    emu.admin.clear_faults()
    key = info.value.key
    assert len(jobs_with_key(alice, key)) == 1  # the dropped POST made the only job
    assert alice.submit_job(M, "#!/bin/bash\ntrue\n", key=key).key == key
    assert len(jobs_with_key(alice, key)) == 1
