"""The per-image chain: raw frame -> calibrated photons -> spots -> hit -> ...

Each stage is a pure function elsewhere in kernels/; this module only strings them together,
times them and records why an image leaves the funnel.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from kernels.calibration import Calibration, calibrate, plan_calibration
from kernels.geometry import DetectorGeometry
from kernels.hitfinder import HitParams, is_hit
from kernels.spotfinder import SpotParams, Spots, find_spots, plan_spotfinding

STAGES = ("calibrate", "spotfind")


class ParamsError(ValueError):
    """Processing parameters that are unknown or out of range."""


@dataclass(frozen=True)
class ProcessingParams:
    """All tunable parameters of a trial, grouped by stage."""

    spotfinder: SpotParams = SpotParams()
    hitfinder: HitParams = HitParams()

    @classmethod
    def from_dict(cls, d: dict | None) -> "ProcessingParams":
        """Build from a trial's parameter dict; unknown sections or keys are refused by name."""
        d = dict(d or {})
        sections = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = set(d) - set(sections)
        if unknown:
            raise ParamsError(f"unknown parameter section(s) {sorted(unknown)}; known: {sorted(sections)}")
        built = {}
        for f in dataclasses.fields(cls):
            default = getattr(cls(), f.name)
            values = d.get(f.name) or {}
            if not isinstance(values, dict):
                raise ParamsError(f"parameter section {f.name!r} must be a mapping")
            known = {g.name: g.type for g in dataclasses.fields(default)}
            bad = set(values) - set(known)
            if bad:
                raise ParamsError(f"unknown {f.name} parameter(s) {sorted(bad)}; known: {sorted(known)}")
            for key, value in values.items():
                expected = type(getattr(default, key))
                if not isinstance(value, (int, float)) or isinstance(value, bool) or (expected is int and not float(value).is_integer()):
                    raise ParamsError(f"{f.name}.{key} must be a {expected.__name__}, got {value!r}")
                if value < 0:
                    raise ParamsError(f"{f.name}.{key} must not be negative, got {value!r}")
            built[f.name] = dataclasses.replace(default, **{k: type(getattr(default, k))(v) for k, v in values.items()})
        return cls(**built)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class ImageResult:
    """The fate of one image: how far it got down the funnel, and why it stopped."""

    chunk: int
    event: int
    timestamp: float
    hit: bool = False
    n_spots: int = 0
    status: str = "new"  # the last stage passed, or "miss"
    reason: str = ""
    timings: dict = field(default_factory=dict)  # stage -> seconds
    spots: Spots | None = None

    def row(self) -> dict:
        """Flat record for tables and the results database (no arrays)."""
        rec = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("timings", "spots")}
        rec.update({f"t_{stage}": self.timings.get(stage, 0.0) for stage in STAGES})
        return rec


class Processor:
    """Runs the chain on frames of one detector with one set of parameters.

    The per-detector work (calibration plan, resolution rings, window offsets) is done once here.
    """

    def __init__(self, calib: Calibration, geometry: DetectorGeometry, params: ProcessingParams = ProcessingParams()):
        self.params = params
        self.geometry = geometry
        self.calibration_plan = plan_calibration(calib, geometry)
        self.spot_plan = plan_spotfinding(geometry, calib.mask, params.spotfinder)

    def process(self, raw: np.ndarray, chunk: int = 0, event: int = 0, timestamp: float = 0.0) -> ImageResult:
        result = ImageResult(chunk, event, timestamp)
        clock = time.perf_counter
        t0 = clock()
        photons = calibrate(raw, self.calibration_plan)
        t1 = clock()
        spots = find_spots(photons, self.spot_plan)
        t2 = clock()
        result.timings = {"calibrate": t1 - t0, "spotfind": t2 - t1}
        result.n_spots = len(spots)
        result.hit = is_hit(len(spots), self.params.hitfinder)
        if not result.hit:
            result.status, result.reason = "miss", f"{len(spots)} spots < {self.params.hitfinder.min_spots}"
            return result
        result.status, result.spots = "hit", spots
        return result


def process_image(raw, calib: Calibration, geometry: DetectorGeometry, params: ProcessingParams = ProcessingParams()):
    """One-off convenience: process a single frame (builds the per-detector plan each call)."""
    return Processor(calib, geometry, params).process(raw)
