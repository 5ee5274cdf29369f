"""First view of a run only the center holds: the dashboard's fetch per chunk beside the whole
run it fetched before, and the one event extracted at the center (what a chunk over the SF
API's download limit gets), through the real SF API emulator (a child process, as a center is).

A simulated run of ``--chunks`` chunks sits only at the center. Ours: the run's small files
and the one chunk holding the event (``CenterRunCache.folder(..., chunks=[k])``). Baseline: the
run whole (every chunk, what the cache fetched before). Extracted: the small files and the one
event alone (``events=[(k, 0)]``, the chunk marked over the limit so it is not tried whole: one
``python -m kernels.io.event_file`` at the center, its file downloaded, the file removed there).
Each into a fresh cache, in turn, ``--repeats`` times; medians of the seconds and bytes fetched.

    .venv/bin/python bench/center_frames_bench.py [--chunks 10] [--frames-per-chunk 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from facility.beamline.simulate import SimulationParams, simulate_experiment
from facility.sfapi.testing import running_emulator
from plugins.sfx_dashboard_app.center_frames import CenterRunCache, folder_bytes
from sfapi_client import Client

HPC_RUNS = "/pscratch/sd/s/sfxflow/bench/runs"


def fetch(client: Client, root: Path, chunks, extract: int | None = None) -> tuple[float, int]:
    """Seconds and bytes of one first view into a fresh cache under ``root``; ``extract``: the
    chunk whose event 0 is extracted at the center instead."""
    cache_dir = Path(tempfile.mkdtemp(dir=root))
    cache = CenterRunCache(cache_dir, max_bytes=1 << 40)
    events = [] if extract is None else [(extract, 0)]
    if extract is not None:  # as after a refusal: not tried whole again
        cache.over_cap.add(f"{HPC_RUNS}/r0001/r0001-c{extract:02d}.h5")
    t0 = time.perf_counter()
    folder = cache.folder(client, "perlmutter", HPC_RUNS, "r0001", chunks, events=events)
    seconds = time.perf_counter() - t0
    fetched = folder_bytes(folder)
    shutil.rmtree(cache_dir)
    return seconds, fetched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=10)
    parser.add_argument("--frames-per-chunk", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        params = dataclasses.replace(SimulationParams(), chunk_size=args.frames_per_chunk)
        images = args.chunks * args.frames_per_chunk
        simulate_experiment(tmp / "sim", runs=1, images=images, seed=1, params=params,
                            log=lambda *_: None)  # fmt: skip
        with running_emulator(tmp / "emulator", max_upload_bytes=64 << 20) as emu:
            shutil.copytree(
                tmp / "sim" / "runs" / "r0001", emu.root / HPC_RUNS.lstrip("/") / "r0001"
            )
            results: dict[str, list[tuple[float, int]]] = {
                "one chunk (ours)": [], "whole run": [], "one event extracted": []
            }  # fmt: skip
            middle = args.chunks // 2
            with Client(emu.base_url, credentials_file=emu.credentials.credentials_file) as client:
                for _ in range(args.repeats):
                    results["one chunk (ours)"].append(fetch(client, tmp, [middle]))
                    results["whole run"].append(fetch(client, tmp, range(args.chunks)))
                    results["one event extracted"].append(fetch(client, tmp, [], middle))
    print(f"run of {args.chunks} chunks × {args.frames_per_chunk} frames (1 Mpix), first view, "
          f"median of {args.repeats}; load {os.getloadavg()[0]:.1f}")  # fmt: skip
    for name, runs in results.items():
        seconds = statistics.median(s for s, _ in runs)
        fetched = statistics.median(b for _, b in runs)
        print(f"  {name:18s} {seconds:6.2f} s  {fetched / 2**20:7.1f} MiB fetched")


if __name__ == "__main__":
    main()
