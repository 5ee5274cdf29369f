"""Start and stop a local Airflow 3 deployment bound to 127.0.0.1 (demo, ``make up``, tests).

``airflow standalone`` would also open log servers on every interface, so each component is run
by hand: api-server on 127.0.0.1, scheduler and triggerer with ``--skip-serve-logs`` (their logs
are files under AIRFLOW_HOME that the api-server reads directly), and the dag-processor.
The login is a generated password in a 0600 file, never in the environment or a log line.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from facility.ports import free_port
from facility.private_files import write_private

REPO = Path(__file__).resolve().parent.parent
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def executor_parallelism(cores: int | None = None) -> int:
    """Task slots of the LocalExecutor: two per core (at least 4), not Airflow's fixed 32.

    Each slot is a worker process of ~150 MB; waiting on the center is deferred to the triggerer,
    so a slot is busy only while a task really works, and two per core keep the cores fed.
    """
    return max(4, 2 * (cores or os.cpu_count() or 1))


def _signal(proc: subprocess.Popen, sig: int) -> bool:
    """Send ``sig`` to a component's process group; False when it had already ended."""
    if proc.poll() is not None:
        return False
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return False
    return True


def _wait_or_kill(proc: subprocess.Popen, timeout: float) -> None:
    """Wait for a signalled component; SIGKILL its group after ``timeout`` seconds."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


class AirflowStack:
    """A local Airflow: metadata DB, api-server, scheduler, dag-processor and triggerer.

    Parameters
    ----------
    home : AIRFLOW_HOME (created)
    metadata_url : SQLAlchemy URL of the metadata DB (default: SQLite file in `home`)
    port : api-server port on 127.0.0.1 (default: a free one)
    env : extra environment for every component (e.g. ``AIRFLOW_VAR_...``, ``AIRFLOW_CONN_...``)
    """

    def __init__(
        self,
        home,
        metadata_url: str | None = None,
        port: int | None = None,
        env: dict | None = None,
        dags_folder=None,
        plugins_folder=None,
        username: str = "admin",
    ):
        self.home = Path(home).resolve()
        self.port = port or free_port()
        self.username = username
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen] = {}
        self.prepared = False
        self.metadata_url = metadata_url or f"sqlite:///{self.home / 'airflow.db'}"
        venv_bin = str(Path(sys.executable).parent)
        self.env = {
            **os.environ,
            "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(
                os.pathsep
            ),
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder or REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_folder or REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(executor_parallelism()),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{username}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metadata_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
            # a worker's calls to the Execution API time out after 5 s by default: too short on
            # a small loaded machine, where the task then fails without having run
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            # a task whose worker died, or that a killed scheduler left behind, is reset and retried
            # within ~30 s instead of 5 min: a run waits for it
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "10",
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "10",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            **(env or {}),
        }

    # -- set-up -------------------------------------------------------------------------------

    @property
    def password(self) -> str:
        return json.loads((self.home / "passwords.json").read_text())[self.username]

    def prepare(self) -> None:
        """Create AIRFLOW_HOME, the login and the JWT secret (0600 files) and migrate the DB."""
        self.home.mkdir(parents=True, exist_ok=True)
        if not (self.home / "passwords.json").exists():
            write_private(
                self.home / "passwords.json", json.dumps({self.username: secrets.token_urlsafe(12)})
            )
        secret_path = self.home / "jwt_secret"
        if not secret_path.exists():
            write_private(secret_path, secrets.token_urlsafe(32))
        # components read the secret from a file-backed env var source of Airflow's config
        self.env["AIRFLOW__API_AUTH__JWT_SECRET_CMD"] = f"cat {secret_path}"
        self.env["AIRFLOW__API__SECRET_KEY_CMD"] = f"cat {secret_path}"
        self.airflow("db", "migrate")
        self.prepared = True

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run an ``airflow`` CLI command against this deployment; raise with its stderr on failure."""
        proc = subprocess.run(
            ["airflow", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
            )
        return proc

    # -- processes ----------------------------------------------------------------------------

    def start_component(self, name: str) -> None:
        args = {
            "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(self.port)],
            "scheduler": ["scheduler", "--skip-serve-logs"],
            "triggerer": ["triggerer", "--skip-serve-logs"],
            "dag-processor": ["dag-processor"],
        }[name]
        log = open(self.home / f"{name}.log", "ab")
        self.processes[name] = subprocess.Popen(
            ["airflow", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def stop_component(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        proc = self.processes.pop(name, None)
        if proc is not None and _signal(proc, sig):
            _wait_or_kill(proc, timeout)

    def start(self, components=COMPONENTS, timeout: float = 120) -> AirflowStack:
        if not self.prepared:
            self.prepare()
        # the api-server first: it serves the Execution API, and a task a scheduler hands to a
        # worker before it answers fails after a few timed-out calls, never having run
        if "api-server" in components:
            self.start_component("api-server")
            self.wait_healthy(timeout)
        for name in components:
            if name not in self.processes:
                self.start_component(name)
        self.wait_healthy(timeout)
        return self

    def stop(self, timeout: float = 30) -> None:
        """Stop every component: all are signalled first, so their shutdowns overlap."""
        procs, self.processes = list(self.processes.values()), {}
        for proc in [proc for proc in procs if _signal(proc, signal.SIGTERM)]:
            _wait_or_kill(proc, timeout)

    def __enter__(self) -> AirflowStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_healthy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    tail = (self.home / f"{name}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"airflow {name} exited with {proc.returncode}:\n{tail}")
            try:
                if requests.get(f"{self.base_url}/api/v2/monitor/health", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"Airflow api-server not healthy at {self.base_url} after {timeout} s")

    # -- REST ---------------------------------------------------------------------------------

    def token(self) -> str:
        """A JWT for the REST API (POST /auth/token)."""
        r = requests.post(
            f"{self.base_url}/auth/token",
            json={"username": self.username, "password": self.password},
            timeout=30,
        )
        r.raise_for_status()
        return r.json()["access_token"]

    def session(self) -> requests.Session:
        s = requests.Session()
        s.headers["Authorization"] = f"Bearer {self.token()}"
        return s
