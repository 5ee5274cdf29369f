"""A one-node Slurm cluster on 127.0.0.1 for the SF API emulator's ``slurm`` backend.

``python -m facility.slurm up [--var-dir DIR]`` starts munged, slurmctld and slurmd from the
Debian ``slurm-wlm`` and ``munge`` packages with every config, key, socket, log and state file
under ``DIR`` (default ``./var/slurm``); ``down`` stops them. Job completion is recorded with
``jobcomp/filetxt`` so ``sacct --completion`` reports finished jobs without a slurmdbd. No
cgroups: processes are tracked with ``proctrack/linuxproc``.

Client commands (sbatch, squeue, scancel, sacct) find this cluster through the environment
returned by :func:`slurm_env`.
"""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

NODE_NAME = "localhost"
PARTITION = "regular"


@dataclass(frozen=True)
class SlurmCluster:
    """Paths and ports of one local Slurm cluster.

    Parameters
    ----------
    var_dir : Path
        Directory holding configs, keys, sockets, logs and state.
    ctld_port, node_port : int
        TCP ports of slurmctld and slurmd on 127.0.0.1.
    cpus : int
        CPUs the node advertises (more than the machine has is fine: jobs share cores).
    """

    var_dir: Path
    ctld_port: int = 6817
    node_port: int = 6818
    cpus: int = 8

    @property
    def conf(self) -> Path:
        return self.var_dir / "slurm.conf"

    @property
    def munge_socket(self) -> Path:
        return self.var_dir / "munge" / "munge.socket"

    @property
    def jobcomp_log(self) -> Path:
        return self.var_dir / "jobcomp.log"

    def pid_file(self, daemon: str) -> Path:
        return self.var_dir / f"{daemon}.pid"


def slurm_env(cluster: SlurmCluster) -> dict[str, str]:
    """Environment for Slurm client commands talking to ``cluster``."""
    env = dict(os.environ)
    env["SLURM_CONF"] = str(cluster.conf)
    return env


def _slurm_conf(cluster: SlurmCluster) -> str:
    v = cluster.var_dir
    return f"""\
ClusterName=sfxflow
SlurmctldHost={NODE_NAME}(127.0.0.1)
SlurmctldPort={cluster.ctld_port}
SlurmdPort={cluster.node_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={cluster.munge_socket}
StateSaveLocation={v}/ctld-state
SlurmdSpoolDir={v}/spool
SlurmctldPidFile={cluster.pid_file("slurmctld")}
SlurmdPidFile={cluster.pid_file("slurmd")}
SlurmctldLogFile={v}/slurmctld.log
SlurmdLogFile={v}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={cluster.jobcomp_log}
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
MinJobAge=300
KillWait=5
ReturnToService=2
MpiDefault=none
LaunchParameters=use_interactive_step
NodeName={NODE_NAME} NodeAddr=127.0.0.1 CPUs={cluster.cpus} State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE_NAME} Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
"""


def _pid_alive(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _start_munged(cluster: SlurmCluster) -> None:
    munge_dir = cluster.munge_socket.parent
    munge_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(munge_dir, 0o700)
    key = munge_dir / "munge.key"
    if not key.exists():
        key.write_bytes(secrets.token_bytes(1024))
        os.chmod(key, 0o400)
    subprocess.run(
        [
            "munged",
            "--force",
            f"--socket={cluster.munge_socket}",
            f"--key-file={key}",
            f"--pid-file={cluster.pid_file('munged')}",
            f"--log-file={munge_dir / 'munged.log'}",
            f"--seed-file={munge_dir / 'munged.seed'}",
        ],
        check=True,
        capture_output=True,
    )


def _wait_node_idle(cluster: SlurmCluster, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        out = subprocess.run(
            ["sinfo", "-h", "-n", NODE_NAME, "-o", "%T"],
            env=slurm_env(cluster),
            capture_output=True,
            text=True,
        )
        state = out.stdout.strip()
        # "idle*" (a trailing flag) means slurmd has not answered yet: wait for a bare state.
        if out.returncode == 0 and state in ("idle", "mixed", "allocated"):
            return
        time.sleep(0.3)
    raise RuntimeError(
        f"Slurm node {NODE_NAME} not ready after {timeout:.0f}s (state {state!r}); "
        f"see {cluster.var_dir}/slurmctld.log and slurmd.log"
    )


def up(cluster: SlurmCluster, timeout: float = 30.0) -> SlurmCluster:
    """Start munged, slurmctld and slurmd for ``cluster`` and wait until the node is usable.

    Parameters
    ----------
    cluster : SlurmCluster
        Where to keep files and which ports to bind.
    timeout : float
        Seconds to wait for the node to become idle.

    Returns
    -------
    SlurmCluster
        The same cluster, running.
    """
    v = cluster.var_dir
    for sub in ("ctld-state", "spool"):
        (v / sub).mkdir(parents=True, exist_ok=True)
    cluster.conf.write_text(_slurm_conf(cluster))
    if not _pid_alive(cluster.pid_file("munged")):
        _start_munged(cluster)
    env = slurm_env(cluster)
    if not _pid_alive(cluster.pid_file("slurmctld")):
        subprocess.run(
            ["slurmctld", "-c", "-f", str(cluster.conf)], env=env, check=True, capture_output=True
        )
    if not _pid_alive(cluster.pid_file("slurmd")):
        subprocess.run(
            ["slurmd", "-N", NODE_NAME, "-f", str(cluster.conf)],
            env=env,
            check=True,
            capture_output=True,
        )
    _wait_node_idle(cluster, timeout)
    return cluster


def _cancel_all_jobs(cluster: SlurmCluster, timeout: float) -> None:
    """scancel every job of ``cluster`` and wait for them to end, so no job outlives slurmd."""
    env = slurm_env(cluster)
    if (
        subprocess.run(
            ["scancel", f"--user={getpass.getuser()}"], env=env, capture_output=True
        ).returncode
        != 0
    ):
        return  # controller not reachable: nothing can be cancelled
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h", "-o", "%i"], env=env, capture_output=True, text=True)
        if out.returncode != 0 or not out.stdout.strip():
            return
        time.sleep(0.2)


def down(cluster: SlurmCluster, timeout: float = 10.0) -> None:
    """Cancel remaining jobs, then stop slurmd, slurmctld and munged (SIGTERM, then SIGKILL)."""
    if _pid_alive(cluster.pid_file("slurmctld")):
        _cancel_all_jobs(cluster, timeout)
    for daemon in ("slurmd", "slurmctld", "munged"):
        pid = _pid_alive(cluster.pid_file(daemon))
        if pid is None:
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _pid_alive(cluster.pid_file(daemon)) == pid:
            time.sleep(0.1)
        if _pid_alive(cluster.pid_file(daemon)) == pid:
            os.kill(pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m facility.slurm", description=__doc__.split("\n")[0]
    )
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--var-dir", type=Path, default=Path("var/slurm"))
    parser.add_argument("--ctld-port", type=int, default=6817)
    parser.add_argument("--node-port", type=int, default=6818)
    parser.add_argument("--cpus", type=int, default=8)
    args = parser.parse_args(argv)
    cluster = SlurmCluster(args.var_dir.resolve(), args.ctld_port, args.node_port, args.cpus)
    if args.action == "up":
        up(cluster)
        print(f"slurm up: export SLURM_CONF={cluster.conf}")
    else:
        down(cluster)
        print("slurm down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
