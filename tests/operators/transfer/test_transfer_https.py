"""HTTP third-party copy (XRootD's HTTP-TPC over TLS): same guarantees, no 2.5 s client poll."""

from __future__ import annotations

import shutil

import pytest

from facility.ports import free_port
from facility.xrootd import XRootDServer, ensure_service_user, hand_over, local_pki
from kernels.io.marker import adler32_file
from operators.hooks.xrootd import XRootDError, XRootDHook
from operators.transfer import transfer_run
from tests.operators.fake_runs import make_run, shared_tmp_dir


@pytest.fixture(scope="module")
def tls_pair():
    base = shared_tmp_dir()
    user = ensure_service_user()
    pki = local_pki(base / "pki", user)
    servers = [
        XRootDServer(name, base / name, base / "state" / name, free_port(), user, pki=pki)
        for name in ("source", "dest")
    ]
    try:
        for server in servers:
            server.start()
        yield (*servers, pki[0])
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_https_pull_copies_a_run_verified(tls_pair, monkeypatch):
    source, dest, ca = tls_pair
    monkeypatch.setenv("SFXFLOW_XROOTD_CA", str(ca))
    marker = make_run(source.data_dir / "exp" / "runs", 1, [3_000_000, 2_000, 5_000_000])
    hand_over(source.data_dir / "exp", source.user)
    report = transfer_run(
        f"{source.url}/exp/runs", f"{dest.url}/scratch/runs", "r0001", marker["files"]
    )
    assert report.files_copied == 3 and report.total_bytes == 8_002_000
    for entry in marker["files"]:
        assert (
            adler32_file(dest.data_dir / "scratch" / "runs" / "r0001" / entry["name"])
            == entry["adler32"]
        )
    # the destination pulled each file through its HTTP-TPC handler, not through xrdcp
    assert dest.log_path.read_text().count("event=TRANSFER_SUCCESS") == 3


def test_https_pull_of_a_missing_source_names_it(tls_pair):
    source, dest, ca = tls_pair
    src, dst = (
        XRootDHook(f"{source.url}/exp", ca_file=str(ca)),
        XRootDHook(f"{dest.url}/scratch", ca_file=str(ca)),
    )
    with pytest.raises(XRootDError, match="nothing-here"):
        dst.pull(src, "nothing-here.h5", "copy.h5")
    assert dst.size("copy.h5") is None
