"""A trial's own detector geometry (its ``detector`` section): the text of a CrystFEL ``.geom``,
for example the setup's ``refined.geom``, used in place of the run's own geometry.

The text travels with the trial's other parameters (the job's parameter JSON), so a trial
fixes its geometry as it fixes its cell. On the chunk format the geometry's panels are
rectangles of the run's flat frames (data block 0, as ``cell-index``'s ``run.geom``): each
frame is cut into them and the multi-panel chain (:class:`PanelImage`) runs on the stack.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels.crystal.detector import Detector
from kernels.crystal.panel_image import PanelImage
from kernels.io.geom import parse_geom
from kernels.io.geom_detector import to_detector
from kernels.io.readers.base import stacked
from kernels.stages.calibration import Calibration

TRIAL_GEOM = "detector.geom"  # the name a trial's geometry text is reported under (FILE:LINE)


class TrialGeometryError(ValueError):
    """A trial geometry that does not fit the frames of the run it is to process."""


@dataclass(frozen=True)
class DetectorParams:
    """The trial's ``detector`` section: ``geom`` the .geom text ('' = the run's geometry)."""

    geom: str = ""


def trial_detector(text: str) -> Detector:
    """The detector a trial's geometry text describes.

    Raises
    ------
    GeometryFileError
        ``detector.geom:LINE: ...`` naming the broken line.
    """
    return to_detector(parse_geom(text, TRIAL_GEOM))


def fitted_panels(detector: Detector, frame_shape: tuple[int, int], run: str) -> Detector:
    """`detector` checked against the run's flat frames of `frame_shape` (rows, cols).

    Raises
    ------
    TrialGeometryError
        Naming the run, the panel and what to change: a panel outside the frames, in another
        data block, or panels of different sizes (they are stacked into one array).
    """
    rows, cols = frame_shape
    for p in detector.panels:
        if p.block != 0 or p.fs1 > cols or p.ss1 > rows:
            raise TrialGeometryError(
                f"{run}: the trial's geometry ({TRIAL_GEOM}) does not fit the run's frames of "
                f"{rows} x {cols} pixels: panel {p.name} is at rows {p.ss0}..{p.ss1 - 1}, "
                f"columns {p.fs0}..{p.fs1 - 1} of data block {p.block}; process this run with "
                "a trial whose geometry was made for its detector (e.g. by sfx_setup on its runs)"
            )
    shapes = sorted({p.shape for p in detector.panels})
    if len(shapes) > 1:
        raise TrialGeometryError(
            f"{run}: the trial's geometry ({TRIAL_GEOM}) has panels of different sizes {shapes}; "
            "the chunk format needs panels of one size"
        )
    return detector


def cut_panels(frame: np.ndarray, detector: Detector) -> np.ndarray:
    """The (panels, rows, cols) stack of a flat frame's panel rectangles."""
    return np.stack([frame[p.ss0 : p.ss1, p.fs0 : p.fs1] for p in detector.panels])


def stacked_image(detector: Detector) -> PanelImage:
    """The panel image of `detector`'s panels stacked in order (panel i = block i)."""
    return PanelImage(stacked(detector, TRIAL_GEOM))


def cut_calibration(calib: Calibration, detector: Detector, image: PanelImage) -> Calibration:
    """The run's flat calibration constants cut into the panels, in `image`'s layout (gaps:
    masked, gain 0)."""
    return Calibration(
        image.image(cut_panels(calib.pedestal, detector), fill=0),
        image.image(cut_panels(calib.gain, detector), fill=0),
        image.mask(cut_panels(calib.mask, detector)),
    )
