"""Superfacility API emulator: local backend vs real Slurm backend, measured side by side.

Prints, for each backend, submit→RUNNING latency (our client submits, then polls every 20 ms)
and request rates of ``GET /status/perlmutter`` and of a job-state query (``GET /compute/jobs``,
which runs squeue/sacct on the Slurm backend), with the slurm/local ratio.

    .venv/bin/python bench/sfapi_bench.py [--jobs 8] [--seconds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facility import slurm  # noqa: E402
from facility.ports import free_port
from facility.sfapi.testing import running_emulator  # noqa: E402
from sfapi_client import Client  # noqa: E402

M = "perlmutter"
TIGHT_POLL = (0.02, 1.0, 0.02)


def submit_to_running(client: Client, n: int) -> list[float]:
    """Seconds from calling submit_job until the job is seen RUNNING, for ``n`` jobs in turn."""
    latencies = []
    for _ in range(n):
        start = time.perf_counter()
        job = client.submit_job(M, "#!/bin/bash\nsleep 30\n")
        client.wait(M, job.jobid, until="running", poll=TIGHT_POLL, timeout=60)
        latencies.append(time.perf_counter() - start)
        client.cancel(M, job.jobid)
    return latencies


def calls_per_second(call, seconds: float) -> float:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        call()
        count += 1
    return count / (time.perf_counter() - start)


def measure(emu, n_jobs: int, seconds: float) -> dict[str, float]:
    with Client(emu.base_url, credentials_file=emu.credentials.credentials_file) as client:
        client.user()
        lat = submit_to_running(client, n_jobs)
        probe = client.submit_job(M, "#!/bin/bash\ntrue\n")
        client.wait(M, probe.jobid, poll=TIGHT_POLL, timeout=60)
        return {
            "submit→running median [s]": statistics.median(lat),
            "submit→running max [s]": max(lat),
            "GET /status calls/s": calls_per_second(lambda: client.status(M), seconds),
            "GET job state calls/s": calls_per_second(lambda: client.job(M, probe.jobid), seconds),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sfapi-bench-") as tmp:
        tmp = Path(tmp)
        (tmp / "local").mkdir()
        with running_emulator(tmp / "local", "local") as emu:
            local = measure(emu, args.jobs, args.seconds)
        cluster = slurm.SlurmCluster(tmp / "slurm", free_port(), free_port())
        (tmp / "emu-slurm").mkdir()
        try:
            slurm.up(cluster)
            with running_emulator(tmp / "emu-slurm", "slurm", slurm_var_dir=cluster.var_dir) as emu:
                on_slurm = measure(emu, args.jobs, args.seconds)
        finally:
            slurm.down(cluster)
    print(f"SF API emulator, {args.jobs} jobs, {args.seconds:.0f} s per rate")
    print(f"{'metric':30s} {'local':>10s} {'slurm':>10s} {'slurm/local':>12s}")
    for metric in local:
        ratio = on_slurm[metric] / local[metric]
        print(f"{metric:30s} {local[metric]:10.3f} {on_slurm[metric]:10.3f} {ratio:12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
