"""Crystal and detector geometry: detector model, lab-frame vectors, cells and space groups."""

from kernels.crystal.geometry import (
    DetectorGeometry,
    default_geometry,
    pixel_to_s,
    project_to_detector,
    reciprocal_basis,
)
from kernels.crystal.symmetry import CrystalSymmetry, SymmetryError

__all__ = [
    "CrystalSymmetry",
    "DetectorGeometry",
    "SymmetryError",
    "default_geometry",
    "pixel_to_s",
    "project_to_detector",
    "reciprocal_basis",
]
