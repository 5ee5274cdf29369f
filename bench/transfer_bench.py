"""Run transfer throughput: our XRootD third-party copy (verified, atomic) vs plain ``cp``, same files, same run.

A fake run of N files (default 10 x 200 MB, random bytes) is written under a source XRootD
server; then, one after the other on the same files:

* ``cp``: ``cp -r`` of the run folder to a plain folder (no checksum, no atomic rename);
* ours, XRootD TPC: ``transfer_run`` between the source server and a destination server
  (destination pulls, adler32 of every file verified against the marker, temp name + rename),
  once over HTTP-TPC (TLS, the default when the servers' CA is known) and once over the xroot
  protocol's TPC (``xrdcp --tpc only``, which polls every 2.5 s);
* ours, local fallback: ``transfer_run`` between plain folders (checksum while copying, fsync).

Prints aggregate throughput of each and the ratio to ``cp``, then removes every file.

    python bench/transfer_bench.py [--files 10] [--size-mb 200] [--parallel 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facility.xrootd import free_port, hand_over, local_pki, server_pair  # noqa: E402
from kernels.runformat import write_marker  # noqa: E402
from operators.transfer import transfer_run  # noqa: E402


def write_run(run_dir: Path, files: int, size: int) -> dict:
    """Write ``files`` chunk files of ``size`` random bytes and the run's marker."""
    run_dir.mkdir(parents=True)
    block = 16 * 1024 * 1024
    for index in range(files):
        with open(run_dir / f"r0001-c{index:02d}.h5", "wb") as handle:
            left = size
            while left:
                handle.write(os.urandom(min(block, left)))
                left -= min(block, left)
    return write_marker(run_dir, 1)


def timed(action) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=10, help="files in flight at once (ours)")
    args = parser.parse_args(argv)

    base = Path(tempfile.mkdtemp(prefix="sfxflow-transfer-bench-", dir="/tmp"))
    base.chmod(0o755)
    source, dest = server_pair(base, free_port(), free_port())
    source.pki = dest.pki = local_pki(base / "pki", source.user)
    ca = source.pki[0]
    try:
        source.start()
        dest.start()
        runs = source.data_dir / "exp" / "runs"
        marker = write_run(runs / "r0001", args.files, args.size_mb * 1_000_000)
        hand_over(source.data_dir, source.user)
        total = sum(entry["bytes"] for entry in marker["files"])
        subprocess.run(["sync"], check=True)  # start every contender with no dirty pages pending

        cp_target = base / "cp"
        cp_target.mkdir()
        cp_seconds = timed(lambda: subprocess.run(["cp", "-r", str(runs / "r0001"), str(cp_target)], check=True))
        subprocess.run(["sync"], check=True)

        os.environ["SFXFLOW_XROOTD_CA"] = str(ca)
        https = transfer_run(f"{source.url}/exp/runs", f"{dest.url}/scratch-https", "r0001", marker["files"],
                             parallel_files=args.parallel)
        assert https.files_copied == args.files, https
        subprocess.run(["sync"], check=True)
        del os.environ["SFXFLOW_XROOTD_CA"]

        tpc = transfer_run(f"{source.url}/exp/runs", f"{dest.url}/scratch", "r0001", marker["files"],
                           parallel_files=args.parallel)
        assert tpc.files_copied == args.files, tpc
        subprocess.run(["sync"], check=True)

        local = transfer_run(runs, base / "local", "r0001", marker["files"], parallel_files=args.parallel)
        assert local.files_copied == args.files, local

        print(f"transfer of one run: {args.files} x {args.size_mb} MB = {total / 1e9:.2f} GB, "
              f"{args.parallel} files in flight (ours), {os.cpu_count()} cores")
        print(f"{'method':<44}{'seconds':>9}{'GB/s':>8}{'vs cp':>8}")
        rows = [("cp -r (no verification)", cp_seconds),
                ("ours: HTTP-TPC, adler32 verified, atomic", https.seconds),
                ("ours: xroot TPC, adler32 verified, atomic", tpc.seconds),
                ("ours: local fallback, adler32, fsync", local.seconds)]
        for name, seconds in rows:
            print(f"{name:<44}{seconds:>9.2f}{total / seconds / 1e9:>8.2f}{cp_seconds / seconds:>8.2f}")
        print(f"ratio ours (HTTP-TPC) / cp throughput: {cp_seconds / https.seconds:.2f} (goal >= 0.90)")
    finally:
        source.stop()
        dest.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
