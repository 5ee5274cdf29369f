"""``python -m facility.beamline simulate --out DIR --runs N --images M [--seed S] [--hit-rate F]``

Variants of the data (see facility/beamline/variants.py): ``--spot-sigma-px 0.7
--spot-sigma-max-px 2`` (per-crystal spot widths), ``--spot-elongation``, ``--domain-size-min-a``,
``--mosaicity-max-deg``, ``--photons-per-reflection`` (weak data), ``--ice-fraction``,
``--miss-diffuse-photons``, ``--space-group`` and ``--cell``.

``--live [--frame-rate HZ] [--run-gap S] [--redis-url URL --stream NAME]`` acquires the runs in
real time, chunk by chunk, with run-started and chunk-closed markers
(:mod:`facility.beamline.live`).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from facility.beamline.live import LiveOptions, redis_notify, simulate_live
from facility.beamline.simulate import SimulationParams, simulate_experiment

VARIANT_OPTIONS = (
    "spot_sigma_px",
    "spot_sigma_max_px",
    "spot_elongation",
    "domain_size_a",
    "domain_size_min_a",
    "mosaicity_deg",
    "mosaicity_max_deg",
    "photons_per_reflection",
    "ice_fraction",
    "ice_ring_photons",
    "miss_diffuse_photons",
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m facility.beamline")
    commands = parser.add_subparsers(dest="command", required=True)
    sim = commands.add_parser("simulate", help="write simulated runs into an experiment folder")
    sim.add_argument("--out", required=True, help="experiment folder (created if missing)")
    sim.add_argument("--runs", type=int, default=1)
    sim.add_argument("--images", type=int, default=1000, help="events per run")
    sim.add_argument(
        "--seed", type=int, default=0, help="experiment seed: crystal, detector, shots"
    )
    sim.add_argument("--first-run", type=int, default=1)
    sim.add_argument("--hit-rate", type=float, default=SimulationParams.hit_rate)
    sim.add_argument("--space-group", default=SimulationParams.space_group)
    sim.add_argument(
        "--cell",
        type=float,
        nargs=6,
        default=SimulationParams.cell,
        metavar=("A", "B", "C", "ALPHA", "BETA", "GAMMA"),
    )
    for name in VARIANT_OPTIONS:
        sim.add_argument(
            "--" + name.replace("_", "-"), type=float, default=getattr(SimulationParams, name)
        )
    sim.add_argument("--chunk-size", type=int, default=SimulationParams.chunk_size)
    sim.add_argument(
        "--light-moved-atoms",
        type=int,
        default=0,
        help="pump-probe: atoms moved in the light state (laser_on, delay_ns tags per event)",
    )
    sim.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    _live_arguments(sim)
    args = parser.parse_args(argv)
    if args.frame_rate <= 0 or args.run_gap < 0:
        parser.error("--frame-rate must be positive and --run-gap not negative")
    if not 0.0 <= args.hit_rate <= 1.0:
        parser.error("--hit-rate must be between 0 and 1")
    if any(getattr(args, name) < 0 for name in VARIANT_OPTIONS) or args.ice_fraction > 1:
        parser.error("variant options must not be negative; --ice-fraction at most 1")
    if args.spot_sigma_px <= 0 or args.domain_size_a <= 0 or args.spot_elongation < 1:
        parser.error("--spot-sigma-px and --domain-size-a must be positive, --spot-elongation >= 1")
    if args.light_moved_atoms < 0:
        parser.error("--light-moved-atoms must not be negative")
    if args.runs < 1 or args.images < 1 or args.chunk_size < 1:
        parser.error("--runs, --images and --chunk-size must be positive")
    return args


def _live_arguments(sim) -> None:
    live = sim.add_argument_group("live acquisition")
    live.add_argument("--live", action="store_true", help="acquire in real time, chunk by chunk")
    live.add_argument("--frame-rate", type=float, default=120.0, help="frames per second (120)")
    live.add_argument("--run-gap", type=float, default=0.0, help="seconds between live runs")
    live.add_argument("--redis-url", help="also publish every marker to this Redis server")
    live.add_argument("--stream", default="sfxflow:run-concluded", help="Redis stream name")
    live.add_argument(
        "--crash-after-chunks", type=int, help="die after N chunks of the first run (no run marker)"
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    params = dataclasses.replace(
        SimulationParams(),
        hit_rate=args.hit_rate,
        space_group=args.space_group,
        cell=tuple(args.cell),
        chunk_size=args.chunk_size,
        light_moved_atoms=args.light_moved_atoms,
        **{name: getattr(args, name) for name in VARIANT_OPTIONS},
    )
    if args.live:
        options = LiveOptions(
            args.frame_rate,
            args.run_gap,
            redis_notify(args.redis_url, args.stream) if args.redis_url else None,
            args.crash_after_chunks,
        )
        simulate_live(
            args.out,
            args.runs,
            args.images,
            args.seed,
            params,
            options,
            args.first_run,
            args.workers,
        )
        return 0
    simulate_experiment(
        args.out,
        args.runs,
        args.images,
        seed=args.seed,
        params=params,
        first_run=args.first_run,
        workers=args.workers,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
