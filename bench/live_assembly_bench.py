"""A live job's end: the outputs assembled from records kept on rank 0 vs from the parts read back.

At a live run's end rank 0 writes ``images.csv``, ``integrated.h5``, ``weather.png`` and
``summary.json``. It used to read every published part back first (what a post-run job still
does); a live job now keeps the finished records as the workers report them. This bench
processes a short run with 2 MPI ranks (the real driver), lays its records out again as one
part of ``--images`` images (chunk numbers shifted, so a 20 000-image run costs 500 images of
processing), then times both ways, alternated ``--repeats`` times in one process so the load
cancels, and checks that both write byte-identical ``integrated.h5`` and ``images.csv``.

    PYTHONPATH=$PWD .venv/bin/python bench/live_assembly_bench.py --images 5000 20000
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from facility.beamline.simulate import simulate_experiment
from facility.beamtime_stack import LOOPBACK_MPI_ENV
from kernels.driver.assemble import assemble
from kernels.driver.parts import PARTS_DIR, Record, finished_records
from kernels.io.checkpoint import Checkpoint, read_checkpoint
from kernels.io.reflections import INTEGRATED_FILE
from kernels.outputs import IMAGES_FILE
from kernels.stages.pipeline import ProcessingParams

REPO = Path(__file__).resolve().parents[1]


def processed_records(folder: Path, images: int) -> list[Record]:
    """The (row, result) records of a simulated run of ``images`` processed on 2 ranks."""
    simulate_experiment(folder / "exp", 1, images, seed=1, log=lambda *_: None)
    out = folder / "out"
    mpiexec = Path(sys.executable).with_name("mpiexec.gforker")
    cmd = [str(mpiexec), "-n", "2", sys.executable, "-m", "kernels", "process"]
    cmd += ["--run", str(folder / "exp" / "runs" / "r0001"), "--out", str(out)]
    env = {**os.environ, **LOOPBACK_MPI_ENV}
    subprocess.run(cmd, cwd=REPO, env=env, check=True, capture_output=True)
    body = json.loads((out / "checkpoint.json").read_text())["body"]
    checkpoint = read_checkpoint(
        out / "checkpoint.json", body["run"], body["trial"], body["params_sha256"]
    )
    assert checkpoint is not None
    return list(finished_records(out, checkpoint))


def scaled_part(records: list[Record], images: int, out: Path) -> Checkpoint:
    """``records`` repeated (chunks shifted) up to ``images``, as one published part."""
    chunks = 1 + max(row.chunk for row, _ in records)
    (out / PARTS_DIR).mkdir(parents=True, exist_ok=True)
    done = set()
    with open(out / PARTS_DIR / "all.pkl", "wb") as part:
        for n in range(images):
            row, result = records[n % len(records)]
            chunk = row.chunk + (n // len(records)) * chunks
            record = (row._replace(chunk=chunk), replace(result, chunk=chunk))
            pickle.dump(record, part, protocol=pickle.HIGHEST_PROTOCOL)
            done.add((chunk, row.event))
    return Checkpoint("r0001", "default", "", len(done), done, [f"{PARTS_DIR}/all.pkl"])


def timed_assembly(out: Path, checkpoint: Checkpoint, kept: list[Record] | None) -> float:
    started = time.perf_counter()
    assemble(out, checkpoint, ProcessingParams(), 1.0, 2, None, records=kept)
    return time.perf_counter() - started


def compare(out: Path, images: int, records: list[Record], repeats: int) -> None:
    checkpoint = scaled_part(records, images, out)
    kept = list(finished_records(out, checkpoint))  # as rank 0 holds them at the end
    read_back, from_kept = [], []
    for _ in range(repeats):
        read_back.append(timed_assembly(out, checkpoint, None))
        reference = [(out / name).read_bytes() for name in (INTEGRATED_FILE, IMAGES_FILE)]
        from_kept.append(timed_assembly(out, checkpoint, kept))
        same = reference == [(out / name).read_bytes() for name in (INTEGRATED_FILE, IMAGES_FILE)]
        if not same:
            raise SystemExit("the two assemblies differ: integrated.h5 or images.csv")
    mb = (out / PARTS_DIR / "all.pkl").stat().st_size / 1e6
    print(
        f"{images:>6} images ({mb:.0f} MB of parts): parts read back {min(read_back):5.2f} s "
        f"(runs {', '.join(f'{t:.2f}' for t in read_back)}), from kept records "
        f"{min(from_kept):5.2f} s (runs {', '.join(f'{t:.2f}' for t in from_kept)}); "
        f"identical outputs; load {os.getloadavg()[0]:.1f}"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--processed", type=int, default=500, help="images actually processed")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=os.environ.get("SFXFLOW_BENCH_DIR")) as tmp:
        records = processed_records(Path(tmp), args.processed)
        for images in args.images:
            compare(Path(tmp) / f"n{images}", images, records, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
