"""Fixtures of the kernels' tests: real MariaDB databases, SQLite files, a TCP proxy that can
cut the DB off for real, small simulated runs, and simulated experiments with ground truth,
processed once per session by the real chain."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pymysql
import pytest

from facility.beamline.simulate import SimulationParams, simulate_experiment
from kernels.process import process_run
from kernels.stages.pipeline import ProcessingParams

MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root"}


def admin_connection():
    return pymysql.connect(**MARIADB, autocommit=True)


@pytest.fixture
def mariadb_admin():
    """Factory of autocommit root connections to MariaDB (to watch and KILL others)."""
    return admin_connection


@pytest.fixture
def mariadb_url():
    """URL of a fresh MariaDB database, dropped after the test."""
    name = f"sfx_test_{uuid.uuid4().hex[:12]}"
    with admin_connection() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    yield f"mysql://root@127.0.0.1:3306/{name}"
    with admin_connection() as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path}/results.db"


@pytest.fixture(params=["sqlite", "mariadb"])
def db_url(request):
    """Both backends: every API test runs against SQLite and the real MariaDB."""
    return request.getfixturevalue(f"{request.param}_url")


class TcpProxy:
    """Forwards 127.0.0.1:<port> to MariaDB; ``cut()`` drops every connection and refuses
    new ones until ``restore()`` — the DB vanishing from the network, for real."""

    def __init__(self, target=("127.0.0.1", 3306)):
        self.target = target
        self.port = None
        self._listener = None
        self._links: list[socket.socket] = []
        self._lock = threading.Lock()
        self.restore()

    def restore(self):
        listener = socket.create_server(("127.0.0.1", self.port or 0))
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self):
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            for sock in self._links:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._links.clear()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            with self._lock:
                self._links += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.close()
                except OSError:
                    pass


@pytest.fixture
def db_proxy():
    proxy = TcpProxy()
    yield proxy
    proxy.cut()


REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
MPIEXEC = str(Path(sys.executable).parent / "mpiexec")


def simulate(out: Path, images: int, seed: int) -> Path:
    """A real simulated run from the beamline simulator; returns its run directory."""
    subprocess.run(
        [
            PYTHON,
            "-m",
            "facility.beamline",
            "simulate",
            "--out",
            str(out),
            "--runs",
            "1",
            "--images",
            str(images),
            "--chunk-size",
            "50",
            "--seed",
            str(seed),
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out / "runs" / "r0001"


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("small"), images=40, seed=5)


BIG_RUN_IMAGES = 400  # long enough that a preemption or a DB cut lands mid-run on a fast machine


@pytest.fixture(scope="session")
def big_run(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("big"), images=BIG_RUN_IMAGES, seed=6)


def _process_cmd(ranks: int, run: Path, out: Path, *extra: str) -> list[str]:
    return [
        MPIEXEC,
        "-n",
        str(ranks),
        PYTHON,
        "-m",
        "kernels",
        "process",
        "--run",
        str(run),
        "--out",
        str(out),
        *extra,
    ]


def _mpi_process(
    ranks: int, run: Path, out: Path, *extra: str, timeout: float = 120
) -> subprocess.CompletedProcess:
    """``mpiexec -n ranks python -m kernels process ...`` to completion."""
    return subprocess.run(
        _process_cmd(ranks, run, out, *extra),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def process_cmd():
    """Builds the ``mpiexec -n N python -m kernels process`` command line."""
    return _process_cmd


@pytest.fixture
def mpi_process():
    """Runs ``mpiexec -n N python -m kernels process ...`` to completion."""
    return _mpi_process


def simulate_and_process(root, images: int, seed: int, space_group: str, hit_rate: float):
    exp = root / "exp"
    params = dataclasses.replace(
        SimulationParams(), hit_rate=hit_rate, space_group=space_group, chunk_size=100
    )
    simulate_experiment(
        exp, runs=1, images=images, seed=seed, params=params, workers=1, log=lambda *_: None
    )
    out = root / "results"
    processing = ProcessingParams.from_dict({"crystal": {"space_group": space_group}})
    summary = process_run(exp / "runs" / "r0001", out, params=processing, trial="t1")
    return exp, out, summary


@pytest.fixture(scope="session")
def lysozyme(tmp_path_factory):
    """P 43 21 2 (no indexing ambiguity): 200 images, half of them hits, processed."""
    return simulate_and_process(tmp_path_factory.mktemp("lysozyme"), 200, 21, "P 43 21 2", 0.5)


@pytest.fixture(scope="session")
def p43(tmp_path_factory):
    """P 43 (indexing ambiguity k, h, -l): 300 images, 60 % hits, processed."""
    return simulate_and_process(tmp_path_factory.mktemp("p43"), 300, 5, "P 43", 0.6)
