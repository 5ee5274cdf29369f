"""What each trial parameter means and the values it accepts, beside nothing else.

The documented table (docs/trial-parameters.md, :mod:`kernels.stages.params_table`), the UI's
descriptions and :meth:`kernels.stages.pipeline.ProcessingParams.from_dict`'s range checks all
read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ParamInfo:
    """What a trial parameter means and its accepted range (inclusive; `high` None: unbounded)."""

    meaning: str
    low: float = 0.0
    high: float | None = None


# section -> key -> meaning and range, beside the dataclasses' defaults; the documented table of
# trial parameters (docs/trial-parameters.md) and the UI's descriptions are generated from it
PARAM_INFO: dict[str, dict[str, ParamInfo]] = {
    "spotfinder": {
        "snr": ParamInfo("a spot pixel stands this many sigmas above its resolution ring"),
        "min_photons": ParamInfo("background-subtracted photons a spot's box must hold"),
        "min_pix": ParamInfo("pixels above the threshold a spot's box must hold", 1),
        "max_pix": ParamInfo("more pixels above the threshold than this: not a spot", 1),
        "window": ParamInfo(
            "edge of a spot's box (pixels; an even one is used as the next odd)", 1, 31
        ),
        "ring_width_px": ParamInfo("width of the resolution rings of the background (pixels)", 1),
        "edge": ParamInfo("candidates this close to the array border are ignored (pixels)"),
        "sample_stride": ParamInfo("every n-th pixel feeds the ring statistics", 1),
        "min_separation": ParamInfo("peaks closer than this are one spot (pixels)"),
    },
    "hitfinder": {"min_spots": ParamInfo("a frame with at least this many spots is a hit")},
    "crystal": {
        # the cell as a whole is checked against the space group (CrystalSymmetry.create)
        **{a: ParamInfo(f"unit cell {a} (A)") for a in "abc"},
        **{a: ParamInfo(f"unit cell {a} (degrees)", 0, 180) for a in ("alpha", "beta", "gamma")},
        "space_group": ParamInfo("space group (Hermann-Mauguin symbol, e.g. P 43 21 2)"),
    },
    "indexing": {
        "max_difference": ParamInfo("longest spot difference vector used for hypotheses (1/A)"),
        "neighbours": ParamInfo("nearest spots per spot that form triplets", 2),
        "max_hypothesis_spots": ParamInfo("lowest-resolution spots used to form triplets", 3),
        "length_tolerance": ParamInfo("difference vs lattice vector length tolerance (1/A)"),
        "lattice_tolerance": ParamInfo("largest distance of an indexed spot from its node (1/A)"),
        "min_indexed": ParamInfo("spots that must be indexed", 1),
        "min_indexed_fraction": ParamInfo("fraction of the spots that must be indexed", 0, 1),
        "fallback_spots": ParamInfo(
            "strongest spots forming the second pass's hypotheses (0: no second pass)"
        ),
        "fallback_max_difference": ParamInfo("second pass: longest difference vector (1/A)"),
        "fallback_length_tolerance": ParamInfo("second pass: length tolerance (1/A)"),
    },
    "refinement": {
        "iterations": ParamInfo("orientation refinement cycles", 1),
        "outlier_px": ParamInfo("spots further from their prediction are dropped (pixels)"),
        "max_rmsd_px": ParamInfo("largest accepted rms spot residual (pixels)"),
        "min_spots": ParamInfo("spots that must remain within outlier_px", 3),
        "refine_cell": ParamInfo(
            "1: refine the free cell parameters too, 0: orientation only", 0, 1
        ),
        "max_cell_change": ParamInfo("largest accepted relative change of a cell parameter"),
        "min_explained_fraction": ParamInfo(
            "fraction of all the image's spots a solution must place within outlier_px", 0, 1
        ),
        "ewald_prediction": ParamInfo(
            "1: predict spots from lattice points rotated onto the Ewald sphere (DIALS's stills "
            "model, for real crystals), 0: along s0 + U B h (as the simulator renders)",
            0,
            1,
        ),
    },
    "integration": {
        "d_min": ParamInfo("high-resolution limit of the predictions (A)", 0.5),
        "mosaicity_deg": ParamInfo("crystal mosaicity (degrees)"),
        "bandwidth": ParamInfo("fractional rms spectral width within a shot"),
        "domain_size_a": ParamInfo("mosaic domain size (A)", 1),
        "min_partiality": ParamInfo("reflections less partial than this are not integrated", 0, 1),
        "signal_radius": ParamInfo("radius of the summation disc (pixels)", 0.5),
        "background_inner": ParamInfo("inner radius of the background annulus (pixels)"),
        "background_outer": ParamInfo("outer radius of the background annulus (pixels)"),
        "background_clip": ParamInfo(
            "annulus pixels this many sigmas above the median are ignored"
        ),
        "adaptive": ParamInfo(
            "1: measure spot size, domain size and mosaicity on each image; 0: the fixed disc",
            0,
            1,
        ),
        "signal_sigmas": ParamInfo("adaptive disc radius in measured spot widths", 0.5),
        "background_width": ParamInfo("adaptive background annulus width (pixels)", 1),
        "min_held": ParamInfo(
            "adaptive: least fraction of a spot on good disc pixels (else not integrated)", 0, 1
        ),
        "pool_evidence": ParamInfo(
            "adaptive: log-likelihood an image's own domain size and mosaicity must gain over "
            "the run's median ones to be used (0: every image its own)",
            0,
        ),
    },
    "detector": {
        "geom": ParamInfo(
            "text of a CrystFEL .geom (e.g. sfx_setup's refined.geom) used in place of the run's "
            "own geometry; its panels are rectangles of the run's frames (empty: the run's own)"
        ),
    },
}
