"""Run transfer throughput: our XRootD third-party copy (verified, atomic) vs plain ``cp``, same files, same run.

A fake run of N files (default 10 x 200 MB, random bytes) is written under a source XRootD
server; then, in rounds (default 3), each method copies the same files to a fresh target:

* ``cp``: ``cp -r`` of the run folder to a plain folder (no checksum, no atomic rename);
* XRootD alone: the destination's HTTP-TPC pull of every file and nothing else (no size check,
  no checksum, no rename): the ceiling for any copy that goes through these XRootD servers;
* ours, XRootD TPC: ``transfer_run`` between the source server and a destination server
  (destination pulls, adler32 of every file verified against the marker, temp name + rename),
  over HTTP-TPC (TLS, the default when the servers' CA is known) and over the xroot protocol's
  TPC (``xrdcp --tpc only``, which polls every 2.5 s);
* ours, local fallback: ``transfer_run`` between plain folders (checksum while copying, fsync).

Before every copy the source files are dropped from the page cache (``posix_fadvise``), so
each method reads them from disk, as a transfer node reads a run written a while ago. The
times of one machine swing several-fold between rounds (memory the VM has not touched yet is
slow to fill), so the medians are compared and the spread is printed.

    python bench/transfer_bench.py [--files 10] [--size-mb 200] [--parallel 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facility.ports import free_port  # noqa: E402
from facility.xrootd import hand_over, local_pki, server_pair  # noqa: E402
from kernels.io.marker import write_marker  # noqa: E402
from operators.hooks.xrootd import XRootDHook  # noqa: E402
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
    return write_marker(run_dir, 1).to_dict()


def evict(folder: Path) -> None:
    """Drop the files of ``folder`` from the page cache (they are clean: written and synced)."""
    for path in folder.iterdir():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument(
        "--parallel",
        type=int,
        default=4,
        help="files in flight at once (ours; the operator's default)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    base = Path(tempfile.mkdtemp(prefix="sfxflow-transfer-bench-", dir="/tmp"))
    base.chmod(0o755)
    source, dest = server_pair(base, free_port(), free_port())
    source.pki = dest.pki = local_pki(base / "pki", source.user)
    ca = str(source.pki[0])
    try:
        source.start()
        dest.start()
        runs = source.data_dir / "exp" / "runs"
        marker = write_run(runs / "r0001", args.files, args.size_mb * 1_000_000)
        hand_over(source.data_dir, source.user)
        total = sum(entry["bytes"] for entry in marker["files"])
        names = [entry["name"] for entry in marker["files"]]
        source_hook = XRootDHook(f"{source.url}/exp/runs/r0001", ca_file=ca)

        def copy_cp(target: str) -> None:
            subprocess.run(["cp", "-r", str(runs / "r0001"), str(base / target)], check=True)

        def copy_xrootd_alone(target: str) -> None:
            dest_hook = XRootDHook(f"{dest.url}/{target}", ca_file=ca)
            with ThreadPoolExecutor(args.parallel) as pool:
                list(pool.map(lambda name: dest_hook.pull(source_hook, name, name), names))

        def copy_ours(target: str, tls: bool) -> None:
            if tls:
                os.environ["SFXFLOW_XROOTD_CA"] = ca
            try:
                report = transfer_run(
                    f"{source.url}/exp/runs",
                    f"{dest.url}/{target}",
                    "r0001",
                    marker["files"],
                    parallel_files=args.parallel,
                )
            finally:
                os.environ.pop("SFXFLOW_XROOTD_CA", None)
            assert report.files_copied == args.files, report

        def copy_local(target: str) -> None:
            report = transfer_run(
                runs, base / target, "r0001", marker["files"], parallel_files=args.parallel
            )
            assert report.files_copied == args.files, report

        methods = {
            "cp -r (no verification)": copy_cp,
            "XRootD alone: HTTP-TPC pulls, no checks": copy_xrootd_alone,
            "ours: HTTP-TPC, adler32 verified, atomic": lambda target: copy_ours(target, tls=True),
            "ours: xroot TPC, adler32 verified, atomic": lambda target: copy_ours(
                target, tls=False
            ),
            "ours: local fallback, adler32, fsync": copy_local,
        }
        times: dict[str, list[float]] = {name: [] for name in methods}
        for round_ in range(args.rounds):
            for index, (name, copy) in enumerate(methods.items()):
                subprocess.run(["sync"], check=True)  # no dirty pages of the last method pending
                evict(runs / "r0001")
                target = f"round{round_}-{index}"
                started = time.monotonic()
                copy(target)
                times[name].append(time.monotonic() - started)
                for folder in (base / target, dest.data_dir / target):
                    shutil.rmtree(folder, ignore_errors=True)

        cp_median = statistics.median(times["cp -r (no verification)"])
        print(
            f"transfer of one run: {args.files} x {args.size_mb} MB = {total / 1e9:.2f} GB, "
            f"{args.parallel} files in flight (ours), cold source, {args.rounds} rounds, {os.cpu_count()} cores"
        )
        print(f"{'method':<44}{'median s':>9}{'min-max s':>14}{'GB/s':>7}{'vs cp':>7}")
        for name, seconds in times.items():
            median = statistics.median(seconds)
            print(
                f"{name:<44}{median:>9.2f}{f'{min(seconds):.2f}-{max(seconds):.2f}':>14}"
                f"{total / median / 1e9:>7.2f}{cp_median / median:>7.2f}"
            )
        ours = statistics.median(times["ours: HTTP-TPC, adler32 verified, atomic"])
        alone = statistics.median(times["XRootD alone: HTTP-TPC pulls, no checks"])
        print(
            f"ratio ours (HTTP-TPC) / cp throughput: {cp_median / ours:.2f} (goal >= 0.90); "
            f"XRootD alone / cp: {cp_median / alone:.2f}; ours / XRootD alone: {alone / ours:.2f}"
        )
    finally:
        source.stop()
        dest.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
