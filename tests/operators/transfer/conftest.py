"""Fixtures for the data-movement tests: real XRootD servers on 127.0.0.1 and fake concluded runs."""

from __future__ import annotations

import shutil

import pytest

from facility.ports import free_port
from facility.xrootd import XRootDServer, hand_over, server_pair
from tests.operators.fake_runs import shared_tmp_dir


@pytest.fixture(scope="module")
def xrootd_pair():
    """A started (source, destination) pair of XRootD servers; stopped and removed afterwards."""
    base = shared_tmp_dir()
    source, dest = server_pair(base, free_port(), free_port())
    source.start()
    try:
        dest.start()
        yield source, dest
    finally:
        source.stop()
        dest.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def throttled_dest(xrootd_pair):
    """A second destination server whose pulls are capped at 20 MB/s, to catch a copy mid-file."""
    source, _ = xrootd_pair
    base = source.data_dir.parent
    dest = XRootDServer(
        "slow", base / "slow", base / "state" / "slow", free_port(), source.user, tpc_rate="20M"
    )
    dest.start()
    yield dest
    dest.stop()


@pytest.fixture
def exp_runs(xrootd_pair, request):
    """A fresh experiment ``runs`` folder under the source server: (local path, root URL)."""
    source, _ = xrootd_pair
    exp = f"exp-{request.node.name}"
    runs = source.data_dir / exp / "runs"
    runs.mkdir(parents=True)
    hand_over(source.data_dir / exp, source.user)
    return runs, f"{source.url}/{exp}/runs"


@pytest.fixture
def scratch(xrootd_pair, request):
    """A fresh destination folder: (local path, root URL)."""
    _, dest = xrootd_pair
    name = f"scratch-{request.node.name}"
    return dest.data_dir / name, f"{dest.url}/{name}"
