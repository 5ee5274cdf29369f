"""Processing the real CSPAD thermolysin frames with our chain, and DIALS's rms beside ours
(shared by the acceptance test and bench/detectors_bench.py)."""

from __future__ import annotations

import numpy as np

from kernels.crystal.geometry import reciprocal_basis
from kernels.crystal.panel_image import PanelImage
from kernels.foreign import process_frames
from kernels.stages.indexing import lattice_distance
from kernels.stages.pipeline import ImageResult, ProcessingParams, Processor
from kernels.stages.refinement import position_residuals

ADU_PER_PHOTON = 7.5  # the gain DIALS's spot finder was given for these frames
CSPAD_TRIAL = {
    "crystal": {"a": 93.3, "b": 93.3, "c": 131.0, "gamma": 120.0, "space_group": "P 61 2 2"},
    # dark-subtracted CSPAD: many single hot pixels above a 6 sigma threshold
    "spotfinder": {"snr": 10.0, "min_photons": 30.0},
    # real crystals: the cell refined and spots predicted from lattice points on the sphere;
    # DIALS's own solution leaves 0.8-1 px on these spots (bench/detectors_bench.py)
    "refinement": {"refine_cell": 1, "ewald_prediction": 1, "max_rmsd_px": 1.2},
}


def process_cspad(reader) -> tuple[list[ImageResult], Processor]:
    return process_frames(reader, ProcessingParams.from_dict(CSPAD_TRIAL), ADU_PER_PHOTON)


def rms_on_spots(processor: Processor, result: ImageResult, dials: dict):
    """Our rms (px) on the spots our refined solution puts within the refinement's outlier
    distance, DIALS's solution's on the same spots and on those within that distance of its own
    predictions; each solution indexes the spots itself and predicts as our refinement does
    (lattice point on the Ewald sphere, in the pixels of the spot's panel)."""
    image, spots = processor.geometry, result.spots
    assert isinstance(image, PanelImage) and spots is not None and result.U is not None
    s = image.pixel_to_s(spots.col, spots.row, result.wavelength)

    def distances(U, B):
        hkl, _ = lattice_distance(s, U, B)
        r = position_residuals(U, B, hkl, spots.col, spots.row, result.wavelength, image, 1)
        return np.hypot(*r.reshape(2, -1))

    ours = distances(result.U, reciprocal_basis(result.cell))
    B_dials = reciprocal_basis(tuple(dials["unit_cell"]))
    u, _, vt = np.linalg.svd(np.array(dials["A_sfxflow"]) @ np.linalg.inv(B_dials))
    theirs = distances(u @ vt, B_dials)
    outlier = processor.params.refinement.outlier_px
    kept, own = ours < outlier, theirs < outlier
    return tuple(float(np.sqrt(np.mean(d**2))) for d in (ours[kept], theirs[kept], theirs[own]))
