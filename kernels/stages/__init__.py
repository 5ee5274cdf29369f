"""The per-image chain: calibration, spot finding, hit finding, indexing, refinement,
integration, and the :class:`Processor` that strings them together with its parameters."""

from kernels.stages.calibration import Calibration, CalibrationError, load_calibration
from kernels.stages.pipeline import (
    STAGES,
    ImageResult,
    ParamsError,
    ProcessingParams,
    Processor,
)

__all__ = [
    "STAGES",
    "Calibration",
    "CalibrationError",
    "ImageResult",
    "ParamsError",
    "ProcessingParams",
    "Processor",
    "load_calibration",
]
