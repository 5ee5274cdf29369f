"""The per-image chain: raw frame -> calibrated photons -> spots -> hit -> indexed -> refined ->
integrated reflections.

Each stage is a pure function elsewhere in kernels/; this module only strings them together,
times them and records why an image leaves the funnel.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from kernels.crystal.detector import Detector
from kernels.crystal.panel_image import ImageGeometry, PanelImage
from kernels.crystal.symmetry import CrystalSymmetry, SymmetryError
from kernels.io.geom import GeometryFileError
from kernels.io.reflections import Reflections
from kernels.stages.adaptive import measure_image_model
from kernels.stages.calibration import Calibration, calibrate, plan_calibration
from kernels.stages.estimation import measure_spot_sigma
from kernels.stages.frame_stats import resolution_estimate, saturated_pixels
from kernels.stages.guards import check_explains_spots
from kernels.stages.hitfinder import HitParams, is_hit
from kernels.stages.indexing import IndexingError, IndexingParams, index_still, plan_indexing
from kernels.stages.integration import IntegrationParams, integrate_still, plan_integration
from kernels.stages.params_info import PARAM_INFO, ParamInfo
from kernels.stages.pooling import ModelPool
from kernels.stages.refinement import RefinementError, RefinementParams, refine_orientation
from kernels.stages.spotfinder import SpotParams, Spots, find_spots, plan_spotfinding, recentred
from kernels.stages.trial_detector import DetectorParams, cut_panels, trial_detector

STAGES = ("calibrate", "spotfind", "index", "refine", "integrate")
RECENTRE_ABOVE_PX = 1.0  # spots wider than this are re-centred before refinement


class ParamsError(ValueError):
    """Processing parameters that are unknown or out of range."""


@dataclass(frozen=True)
class CrystalParams:
    """The target crystal (the trial's ``crystal`` section); defaults: lysozyme."""

    a: float = 79.1
    b: float = 79.1
    c: float = 38.4
    alpha: float = 90.0
    beta: float = 90.0
    gamma: float = 90.0
    space_group: str = "P 43 21 2"

    @property
    def cell(self) -> tuple[float, ...]:
        return (self.a, self.b, self.c, self.alpha, self.beta, self.gamma)

    def symmetry(self) -> CrystalSymmetry:
        """The validated cell and space group (SymmetryError names what is wrong)."""
        return CrystalSymmetry.create(self.cell, self.space_group)


def check_range(where: str, value: float, info: ParamInfo) -> None:
    """ParamsError naming `where` when `value` is outside the parameter's range."""
    if value < info.low:
        raise ParamsError(
            f"{where} must not be negative, got {value!r}"
            if info.low == 0
            else f"{where} must be at least {info.low:g}, got {value!r}"
        )
    if info.high is not None and value > info.high:
        raise ParamsError(f"{where} must be at most {info.high:g}, got {value!r}")


@dataclass(frozen=True)
class ProcessingParams:
    """All tunable parameters of a trial, grouped by stage."""

    spotfinder: SpotParams = SpotParams()
    hitfinder: HitParams = HitParams()
    crystal: CrystalParams = CrystalParams()
    indexing: IndexingParams = IndexingParams()
    refinement: RefinementParams = RefinementParams()
    integration: IntegrationParams = IntegrationParams()
    detector: DetectorParams = DetectorParams()

    @classmethod
    def from_dict(cls, d: dict | None) -> ProcessingParams:
        """Build from a trial's parameter dict; unknown sections or keys are refused by name."""
        d = dict(d or {})
        sections = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = set(d) - set(sections)
        if unknown:
            raise ParamsError(
                f"unknown parameter section(s) {sorted(unknown)}; known: {sorted(sections)}"
            )
        built = {}
        for f in dataclasses.fields(cls):
            default = getattr(cls(), f.name)
            values = d.get(f.name) or {}
            if not isinstance(values, dict):
                raise ParamsError(f"parameter section {f.name!r} must be a mapping")
            known = {g.name: g.type for g in dataclasses.fields(default)}
            bad = set(values) - set(known)
            if bad:
                raise ParamsError(
                    f"unknown {f.name} parameter(s) {sorted(bad)}; known: {sorted(known)}"
                )
            for key, value in values.items():
                expected = type(getattr(default, key))
                if expected is str:
                    if not isinstance(value, str):
                        raise ParamsError(f"{f.name}.{key} must be a string, got {value!r}")
                    continue
                if (
                    not isinstance(value, (int, float))
                    or isinstance(value, bool)
                    or (expected is int and not float(value).is_integer())
                ):
                    raise ParamsError(
                        f"{f.name}.{key} must be a {expected.__name__}, got {value!r}"
                    )
                check_range(f"{f.name}.{key}", value, PARAM_INFO[f.name][key])
            built[f.name] = dataclasses.replace(
                default, **{k: type(getattr(default, k))(v) for k, v in values.items()}
            )
        params = cls(**built)
        try:
            params.crystal.symmetry()
        except SymmetryError as exc:
            raise ParamsError(f"crystal: {exc}") from None
        if params.detector.geom:
            try:
                trial_detector(params.detector.geom)
            except GeometryFileError as exc:  # names detector.geom and the line
                raise ParamsError(str(exc)) from None
        return params

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
    n_indexed: int = 0
    n_refined: int = 0
    n_integrated: int = 0
    index_residual: float = 0.0  # rms distance of indexed spots from their lattice points, 1/A
    rmsd_px: float = 0.0  # refined spot-position residual
    spot_sigma_px: float = 0.0  # measured spot width (adaptive integration)
    domain_size_a: float = 0.0  # domain size and mosaicity integration used
    mosaicity_deg: float = 0.0
    n_saturated: int = 0  # good pixels at the ADC's full scale
    d_est: float = 0.0  # estimated resolution from the spots (A), 0 when none
    status: str = "new"  # the last stage passed: miss, hit, indexed, refined, integrated
    reason: str = ""  # why the image went no further
    timings: dict = field(default_factory=dict)  # stage -> seconds
    spots: Spots | None = None
    wavelength: float = 0.0
    U: np.ndarray | None = None  # refined orientation
    cell: tuple | None = None  # refined (or target) cell
    reflections: Reflections | None = None

    ARRAYS = ("timings", "spots", "U", "cell", "reflections")

    def row(self) -> dict:
        """Flat record for tables and the results database (no arrays)."""
        rec = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in self.ARRAYS
        }
        rec.update({f"t_{stage}": self.timings.get(stage, 0.0) for stage in STAGES})
        return rec


class Processor:
    """Runs the chain on frames of one detector with one set of parameters.

    The per-detector work (calibration plan, resolution rings, window offsets) is done once here.
    A multi-panel detector comes as a :class:`PanelImage` (calibration constants in its image
    layout); its raw frames may be given stacked (panels, rows, cols), as readers give them,
    or flat and cut into the panels of `frame_panels` (a trial's geometry on the chunk format).
    """

    def __init__(
        self,
        calib: Calibration,
        geometry: ImageGeometry,
        params: ProcessingParams = ProcessingParams(),
        frame_panels: Detector | None = None,
    ):
        self.params = params
        self.geometry = geometry
        self.frame_panels = frame_panels
        self.calibration_plan = plan_calibration(calib, geometry)
        self.spot_plan = plan_spotfinding(geometry, calib.mask, params.spotfinder)
        self.symmetry = params.crystal.symmetry()
        self.indexing_plan = plan_indexing(
            self.symmetry.B,
            self.symmetry.lattice_rotations,
            params.indexing,
            self.symmetry.centring_vectors,
        )
        self.integration_plan = plan_integration(
            self.symmetry, geometry, calib.mask, params.integration
        )
        self.model_pool = ModelPool(params.integration.pool_evidence)  # this run's models

    def process(
        self,
        raw: np.ndarray,
        chunk: int = 0,
        event: int = 0,
        timestamp: float = 0.0,
        wavelength: float | None = None,
    ) -> ImageResult:
        """Run the chain on one raw frame; `wavelength` (Angstrom, from the recorded photon
        energy) is needed to go beyond the hit stage."""
        result = ImageResult(chunk, event, timestamp)
        clock = time.perf_counter
        t0 = clock()
        if self.frame_panels is not None:
            raw = cut_panels(raw, self.frame_panels)
        if isinstance(self.geometry, PanelImage) and raw.ndim == 3:
            raw = self.geometry.image(raw)
        photons = calibrate(raw, self.calibration_plan)
        result.n_saturated = saturated_pixels(raw, self.calibration_plan.mask)
        t1 = clock()
        spots = find_spots(photons, self.spot_plan)
        t2 = clock()
        result.timings = {"calibrate": t1 - t0, "spotfind": t2 - t1}
        result.n_spots = len(spots)
        result.d_est = resolution_estimate(spots.col, spots.row, wavelength or 0.0, self.geometry)
        result.hit = is_hit(len(spots), self.params.hitfinder)
        if not result.hit:
            result.status, result.reason = (
                "miss",
                f"miss: {len(spots)} spots < {self.params.hitfinder.min_spots} needed for a hit "
                "(hitfinder.min_spots; for weak data lower it or spotfinder.snr)",
            )
            return result
        result.status, result.spots = "hit", spots
        if wavelength is None or not wavelength > 0:
            result.reason = (
                "not indexed: no photon energy recorded for this image, so no wavelength "
                "(check the run's photon_energy_eV data)"
            )
            return result
        result.wavelength = float(wavelength)
        self._index_refine_integrate(photons, spots, result)
        return result

    def _index_refine_integrate(
        self, photons: np.ndarray, spots: Spots, result: ImageResult
    ) -> None:
        """The crystal stages of a hit; each failure ends the image with its reason."""
        clock = time.perf_counter
        t0 = clock()
        try:
            solution = index_still(
                spots.col,
                spots.row,
                result.wavelength,
                self.geometry,
                self.indexing_plan,
                intensity=spots.intensity,
            )
        except IndexingError as exc:
            result.timings["index"] = clock() - t0
            result.reason = f"not indexed: {exc}"
            return
        t1 = clock()
        result.timings["index"] = t1 - t0
        result.status, result.n_indexed, result.index_residual = (
            "indexed",
            solution.n_indexed,
            solution.residual,
        )
        on = np.flatnonzero(solution.indexed)
        try:
            refined = self._refine(photons, spots, on, solution.U, solution.hkl[on], result)
        except RefinementError as exc:
            result.timings["refine"] = clock() - t1
            result.reason = f"refinement rejected: {exc}"
            return
        t2 = clock()
        result.timings["refine"] = t2 - t1
        result.status, result.n_refined, result.rmsd_px = "refined", refined.n_used, refined.rmsd_px
        result.U, result.cell = refined.U, refined.cell
        used = on[refined.used]
        self._integrate(photons, spots.background[used], solution.hkl[used], refined, result)
        result.timings["integrate"] = clock() - t2

    def _refine(self, photons, spots: Spots, on, U, hkl, result: ImageResult):
        """Refine the solution on the indexed spots `on` (re-centred on discs matched to the
        measured spot width when the spot finder's box is too small for them) and check that
        it explains the image's spots."""
        col, row = spots.col[on], spots.row[on]
        sigma = measure_spot_sigma(photons, col, row, spots.background[on])
        if sigma > RECENTRE_ABOVE_PX:
            radius = self.params.integration.signal_sigmas * sigma
            col, row = recentred(photons, col, row, spots.background[on], radius)
        refined = refine_orientation(
            U,
            self.symmetry,
            hkl,
            col,
            row,
            spots.intensity[on],
            result.wavelength,
            self.geometry,
            self.params.refinement,
        )
        check_explains_spots(
            refined.n_used, len(spots), self.params.refinement.min_explained_fraction
        )
        return refined

    def _integrate(self, photons, spot_background, hkl, refined, result: ImageResult) -> None:
        """Measure the image's model (adaptive integration) and integrate its reflections."""
        p = self.params.integration
        model = None
        if p.adaptive:
            model = measure_image_model(
                photons,
                spot_background,
                hkl,
                refined.U,
                refined.B,
                result.wavelength,
                self.geometry,
                self.integration_plan,
                self.model_pool,
            )
        result.spot_sigma_px = model.spot_sigma_px if model else p.signal_radius / p.signal_sigmas
        result.domain_size_a = model.domain_size_a if model else p.domain_size_a
        result.mosaicity_deg = model.mosaicity_deg if model else p.mosaicity_deg
        reflections = integrate_still(
            photons,
            refined.U,
            result.wavelength,
            self.geometry,
            self.integration_plan,
            refined.B,
            model,
        )
        result.n_integrated = len(reflections)
        if len(reflections) == 0:
            result.reason = (
                "not integrated: no predicted reflection could be integrated (all fall off the "
                "detector or on bad pixels; check the mask and integration.d_min)"
            )
            return
        result.status, result.reflections = "integrated", reflections
