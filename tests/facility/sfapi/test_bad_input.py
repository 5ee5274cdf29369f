"""Bad input gets the real API's error shape, names the problem, and the server keeps serving."""

from __future__ import annotations

import json
import os

import pytest
import requests

from sfapi_client import BadRequest, NotFound

M = "perlmutter"


@pytest.fixture
def raw(emu):
    """A requests session authenticated as alice with her static token, plus the base URL."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {emu.all_credentials['alice'].static_token}"
    yield session, emu.base_url
    assert session.get(emu.base_url + "/status/perlmutter", timeout=10).json()["status"] == "active"


def task_result(session, base, task_id):
    task = session.get(f"{base}/tasks/{task_id}", timeout=10).json()
    return task["status"], json.loads(task["result"])


def test_script_without_shebang_is_refused_with_sbatch_message(raw):
    session, base = raw
    r = session.post(f"{base}/compute/jobs/{M}", data={"job": "echo no shebang", "isPath": "false"})
    assert r.status_code == 200 and r.json()["status"] == "OK"
    status, result = task_result(session, base, r.json()["task_id"])
    assert status == "completed" and result["status"] == "error" and result["jobid"] is None
    assert "The first line must start with #!" in result["error"]


def test_bad_sbatch_option_and_missing_script_path_are_refused(alice):
    with pytest.raises(BadRequest, match="Invalid --nodes value: 'zero'"):
        alice.submit_job(M, "#!/bin/bash\n#SBATCH --nodes=zero\ntrue\n")
    with pytest.raises(BadRequest, match="only perlmutter|does not accept batch jobs"):
        alice.submit_job("dtns", "#!/bin/bash\ntrue\n")
    with pytest.raises(ValueError, match="#!"):
        alice.submit_job(M, "echo no shebang\n")


def test_unknown_machine_is_a_validation_error(raw, alice):
    session, base = raw
    r = session.get(f"{base}/compute/jobs/cray", timeout=10)
    assert r.status_code == 422
    (detail,) = r.json()["detail"]
    assert detail["loc"] == ["path", "machine"] and "perlmutter" in detail["msg"]
    with pytest.raises(BadRequest, match="422.*machine"):
        alice.ls("cray", "/")
    assert session.get(f"{base}/status/cray", timeout=10).status_code == 404


def test_path_traversal_is_refused(raw, emu, alice):
    session, base = raw
    r = session.get(f"{base}/utilities/ls/{M}/global/homes/alice/%2E%2E/bob", timeout=10)
    body = r.json()
    assert r.status_code == 200 and body["status"] == "ERROR" and body["entries"] == []
    assert "'..' is not allowed" in body["error"]
    with pytest.raises(BadRequest, match="not allowed"):
        alice.download(M, "/global/homes/alice/../../../etc/passwd")
    # a path in an option's value is confined too, not read from the host
    with pytest.raises(BadRequest, match="Permission denied"):
        alice.run_command(M, "wc --files0-from=/etc/passwd")
    with pytest.raises(BadRequest, match="own argument"):
        alice.run_command(M, "tail -n1 -f/etc/passwd")
    home = emu.root / "global/homes/alice"
    os.symlink("/etc", home / "etc-link")
    os.symlink(emu.root / "global/homes/bob", home / "bob-link")
    try:
        with pytest.raises(BadRequest, match="outside the machine's filesystem"):
            alice.download(M, "/global/homes/alice/etc-link/passwd")
        with pytest.raises(BadRequest, match="outside your directories"):
            alice.ls(M, "/global/homes/alice/bob-link")
    finally:
        (home / "etc-link").unlink()
        (home / "bob-link").unlink()


def test_huge_upload_is_refused_before_it_is_stored(emu, raw, alice):
    session, base = raw
    big = b"x" * (2 * 1024 * 1024)  # the fixture's limit is 1 MiB
    r = session.put(f"{base}/utilities/upload/{M}/pscratch/alice/big.bin", files={"file": big})
    assert r.status_code == 413 and r.json()["status"] == "ERROR"
    assert "File too large" in r.json()["error"]
    with pytest.raises(BadRequest, match="413"):
        alice.upload(M, "/pscratch/alice/big.bin", big)
    assert not (emu.root / "pscratch/alice/big.bin").exists()
    alice.upload(M, "/pscratch/alice/small.bin", b"ok")


def test_invalid_json_and_wrong_content_type_get_422(emu, raw):
    session, base = raw
    admin = emu.admin._session
    r = admin.post(
        base.replace("/api/v1.2", "/_emulator/faults"),
        data=b"{not json",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"
    r = session.post(
        f"{base}/compute/jobs/{M}",
        data=b'{"job": ',
        timeout=10,
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422 and {d["loc"][-1] for d in r.json()["detail"]} >= {"job"}


def test_unknown_task_job_and_directory_download(raw, alice):
    session, base = raw
    assert session.get(f"{base}/tasks/999999", timeout=10).status_code == 404
    with pytest.raises(NotFound, match="Invalid job id"):
        alice.cancel(M, "424242")
    with pytest.raises(NotFound):
        alice.job(M, "424242")
    with pytest.raises(BadRequest, match="Is a directory"):
        alice.download(M, "/pscratch/alice")
