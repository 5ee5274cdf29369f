"""The whole system on one machine: emulated HPC center, beamline folder, transfer, Airflow.

Used by ``make demo``, ``make up`` and the end-to-end tests. Everything binds to 127.0.0.1; the
SF API credentials stay in the emulator's 0600 file and reach Airflow only as that file's path
(in the ``sfapi_default`` connection).
"""

from __future__ import annotations

import dataclasses
import json
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import requests

from facility.airflow_stack import AirflowStack
from facility.ports import free_port
from facility.sfapi.job_user import JobUser
from facility.sfapi.testing import RunningEmulator, running_emulator
from operators.pipeline.beamtime import VARIABLE, Beamtime

LOOPBACK_MPI_ENV = {"UCX_NET_DEVICES": "lo", "UCX_TLS": "self,sm,tcp"}


@dataclass
class RunningBeamtime:
    airflow: AirflowStack
    center: RunningEmulator
    beamtime: Beamtime
    _session: requests.Session | None = field(default=None, repr=False)

    @property
    def exp_dir(self) -> Path:
        return Path(self.beamtime.exp_dir)

    def api(self, path: str, **params):
        """GET ``/api/v2/<path>`` as the admin user (a fresh token when the old one expired)."""
        for _ in range(2):
            if self._session is None:
                self._session = self.airflow.session()
            r = self._session.get(
                f"{self.airflow.base_url}/api/v2/{path}", params=params, timeout=30
            )
            if r.status_code != 401:
                r.raise_for_status()
                return r.json()
            self._session = None
        raise PermissionError(f"Airflow refused {path} twice with 401")

    def dag_runs(self, dag_id: str, limit: int = 100) -> list[dict]:
        """The newest DAG runs of `dag_id`, newest first; none while the DAG is not parsed yet."""
        try:
            return self.api(f"dags/{dag_id}/dagRuns", order_by="-run_after", limit=limit)[
                "dag_runs"
            ]
        except requests.HTTPError as exc:
            if exc.response is not None and exc.response.status_code == 404:
                return []
            raise

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.api(f"dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]

    def _wait(self, check, timeout: float, what: str):
        """Call `check()` every second until it returns something; TimeoutError naming `what`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            time.sleep(1.0)
        raise TimeoutError(f"{what} after {timeout} s")

    def wait_for_dag_run(
        self, dag_id: str, run_id: str, timeout: float = 300, states=("success", "failed")
    ) -> dict:
        """Poll the REST API until the DAG run reaches one of `states`; return it."""
        last = {}

        def reached():
            try:
                last.update(self.api(f"dags/{dag_id}/dagRuns/{run_id}"))
            except (requests.HTTPError, requests.Timeout):  # not created yet, or a slow server
                return None
            return dict(last) if last["state"] in states else None

        return self._wait(
            reached, timeout, f"{dag_id}/{run_id} not in {states} (last: {last.get('state')})"
        )

    def wait_until_idle(self, dag_id: str, since: str, timeout: float = 120) -> list[dict]:
        """Wait until `dag_id` has a run queued at or after `since` (ISO time) and none unfinished."""

        def idle():
            runs = self.api(f"dags/{dag_id}/dagRuns")["dag_runs"]
            fresh = [
                r
                for r in runs
                if r["queued_at"]
                and datetime.fromisoformat(r["queued_at"]) >= datetime.fromisoformat(since)
            ]
            return (
                runs if fresh and all(r["state"] in ("success", "failed") for r in runs) else None
            )

        return self._wait(idle, timeout, f"{dag_id}: no finished run since {since}")

    def task_errors(self, dag_id: str, run_id: str) -> list[tuple[str, str]]:
        """(task id, error) of each failed or retrying task: the last errors of its log files."""
        found = []
        for ti in self.task_instances(dag_id, run_id):
            if ti["state"] not in ("failed", "up_for_retry"):
                continue
            folder = (
                self.airflow.home
                / "logs"
                / f"dag_id={dag_id}"
                / f"run_id={run_id}"
                / f"task_id={ti['task_id']}"
            )
            for log in sorted(folder.glob("**/*.log")):
                errors = [
                    json.loads(line)
                    for line in log.read_text(errors="replace").splitlines()
                    if line.startswith("{") and '"level":"error"' in line
                ]
                for e in errors[-2:]:
                    detail = (e.get("error_detail") or [{}])[0]
                    message = f"{detail.get('exc_type', '')} {detail.get('exc_value', '')}".strip()
                    found.append((ti["task_id"], f"{e.get('event')}: {message}".rstrip(": ")))
        return found

    def failure_reason(self, dag_id: str, run_id: str) -> str:
        """One line saying which task failed and why (its error, or the task states)."""
        errors = self.task_errors(dag_id, run_id)
        if errors:
            task, error = errors[-1]
            return f"task {task} failed: {' '.join(error.split())[:400]}"
        states = {ti["task_id"]: ti["state"] for ti in self.task_instances(dag_id, run_id)}
        started = {task: state for task, state in states.items() if state}
        if not started:
            return "no task has started yet (is the DAG paused, or the scheduler busy?)"
        failed = [task for task, state in started.items() if state == "failed"]
        if failed:  # failed without an error of its own: its worker never ran it
            return (
                f"task {failed[0]} failed before it ran (no error in its log; the worker's "
                f"output is in {self.airflow.home / 'scheduler.log'})"
            )
        active = [f"{task}={state}" for task, state in started.items() if state != "success"]
        if active:
            return "tasks " + ", ".join(active)
        waiting = [task for task, state in states.items() if not state]
        return f"task {waiting[0]} not started yet" if waiting else "every task succeeded"

    def explain(self, dag_id: str, run_id: str) -> str:
        """Task states of a DAG run and the error of each failed task (for test and demo output)."""
        tis = self.task_instances(dag_id, run_id)
        lines = [f"{dag_id}/{run_id}: " + ", ".join(f"{ti['task_id']}={ti['state']}" for ti in tis)]
        lines += [f"  {task}: {error[:1500]}" for task, error in self.task_errors(dag_id, run_id)]
        return "\n".join(lines)


def _xrootd_locations(stack: ExitStack, workdir: Path, exp_dir: Path, hpc_root: Path, hpc_dir: str):
    """Start a beamline-side and an HPC-side XRootD server; return the transfer URLs and the CA.

    The servers run as an unprivileged user: it must be able to traverse to both folders (so
    `workdir` must not sit under a private directory), read the experiment and own the
    center's ``runs`` folder it writes into.
    """
    from facility.xrootd import XRootDServer, ensure_service_user, hand_over, local_pki

    user = ensure_service_user()
    hand_over(hpc_root / hpc_dir.lstrip("/") / "runs", user)
    pki = local_pki(workdir / "xrootd" / "pki", user)
    servers = []
    for name, data_dir in (("source", exp_dir.parent), ("dest", hpc_root)):
        server = XRootDServer(name, data_dir, workdir / "xrootd" / name, free_port(), user, pki=pki)
        server.state_dir.mkdir(parents=True, exist_ok=True)
        server.start()
        stack.callback(server.stop)
        servers.append(server)
    source, dest = servers
    return f"{source.url}/{exp_dir.name}", f"{dest.url}{hpc_dir}", pki[0]


def center_job_user(center_root: Path) -> JobUser:
    """Whom the emulated center should run this stack's jobs and commands as: ``nobody`` where
    the emulator may hand it the folders and it can run our Python (every job runs
    ``python -m kernels``), else the server's user, with a warning saying why."""
    return JobUser.choose("auto", center_root).reaching_python()


def private_sqlite_url(folder: Path, job_user: JobUser) -> str:
    """A SQLite results DB the center's jobs (as ``job_user``) and Airflow (as us) both write.

    The file and its folder belong to the job user; SQLite gives the ``-wal``/``-shm`` files
    that another process makes the database file's owner and mode, so none ends up ours only.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "results.db"
    path.touch()
    for owned in (folder, path):
        job_user.give(owned)
    return f"sqlite:///{path}"


@contextmanager
def running_beamtime(
    workdir,
    *,
    experiment: str = "demo",
    results_db: str | None = None,
    metadata_url: str | None = None,
    use_xrootd: bool = False,
    port: int | None = None,
    airflow_env: dict[str, str] | None = None,
    **settings,
):
    """Start the emulated center, transfer servers (optional) and Airflow for one beamtime; yield
    a :class:`RunningBeamtime`, everything stopped on exit. `settings` override
    :class:`~operators.pipeline.beamtime.Beamtime` fields (ranks, trial, polls, ...),
    `airflow_env` the stack's Airflow settings (``AIRFLOW__…`` variables)."""
    workdir = Path(workdir).resolve()
    exp_dir = workdir / "experiment"
    (exp_dir / "runs").mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        job_user = center_job_user(workdir / "center" / "fs")
        center = stack.enter_context(
            running_emulator(
                workdir / "center",
                backend="local",
                job_user="auto" if job_user.account else "server",
            )
        )
        hpc_dir = f"/pscratch/sd/s/sfxflow/{experiment}"
        hpc_host = center.root / hpc_dir.lstrip("/")
        (hpc_host / "runs").mkdir(parents=True, exist_ok=True)
        job_user.give(hpc_host)  # its jobs make the results and datasets folders in it
        results_db = results_db or private_sqlite_url(workdir / "resultsdb", job_user)
        transfer_env = {}
        if use_xrootd:
            source, dest, ca = _xrootd_locations(stack, workdir, exp_dir, center.root, hpc_dir)
            transfer_env["SFXFLOW_XROOTD_CA"] = str(ca)  # third-party copies over HTTP-TPC
        else:
            source, dest = str(exp_dir), str(hpc_host)
        defaults = {
            "facility_poll_seconds": 2.0,
            "job_poll": (0.5, 1.5, 5.0),
            # one node: MPICH's fork launcher and loopback-only shared-memory/TCP transports, so
            # no MPI process listens beyond 127.0.0.1
            "mpiexec": "mpiexec.gforker",
            "job_env": LOOPBACK_MPI_ENV,
        }
        beamtime = Beamtime.from_dict(
            {
                **dataclasses.asdict(Beamtime()),
                **defaults,
                **settings,
                "experiment": experiment,
                "exp_dir": str(exp_dir),
                "state_dir": str(workdir / "state"),
                "hpc_dir": hpc_dir,
                "transfer_source": source,
                "transfer_dest": dest,
                "results_db": results_db,
            }
        )
        env = {
            f"AIRFLOW_VAR_{VARIABLE.upper()}": beamtime.to_json(),
            "AIRFLOW_CONN_SFAPI_DEFAULT": json.dumps(
                {
                    "conn_type": "http",
                    "host": center.base_url,
                    "extra": {"credentials_file": str(center.credentials.credentials_file)},
                }
            ),
            "SFXFLOW_RESULTS_DB": beamtime.results_db,
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            **transfer_env,
            **(airflow_env or {}),
        }
        airflow = AirflowStack(workdir / "airflow", metadata_url=metadata_url, port=port, env=env)
        airflow.prepare()
        airflow.airflow("pools", "set", "sfx_transfer", "4", "run transfers in flight at once")
        stack.callback(airflow.stop)
        airflow.start()
        yield RunningBeamtime(airflow, center, beamtime)
