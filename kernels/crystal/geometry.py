"""Detector geometry and diffraction geometry of a still shot.

Conventions (used by the simulator and every kernel):

* Lab frame: the beam travels along +z; the detector plane is z = distance, its fast axis is +x
  (array columns) and its slow axis is +y (array rows). Pixel (row, col) has its centre at
  x = (col - beam_x) * pixel_size, y = (row - beam_y) * pixel_size.
* Reciprocal space in inverse Angstrom; the incident wave vector is s0 = (0, 0, 1/lambda); a
  reflection with Miller index h has scattering vector s = A @ h where A = U @ B (B the reciprocal
  basis of the unit cell as columns, U the crystal orientation).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class DetectorGeometry:
    """A flat detector perpendicular to the beam, made of rectangular panels.

    Parameters
    ----------
    shape : (int, int)
        (rows, cols) of the full pixel array, gaps included.
    pixel_size_mm : float
        Square pixel edge in millimetres.
    distance_mm : float
        Sample-to-detector distance in millimetres.
    beam_x, beam_y : float
        Beam centre in pixels (column, row).
    panels : tuple of (row0, row1, col0, col1)
        Half-open pixel ranges of the sensitive panels; pixels outside every panel are gaps.
    """

    shape: tuple[int, int] = (1024, 1024)
    pixel_size_mm: float = 0.1
    distance_mm: float = 90.0
    beam_x: float = 511.3
    beam_y: float = 514.7
    panels: tuple[tuple[int, int, int, int], ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["panels"] = [list(p) for p in self.panels]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DetectorGeometry:
        rows, cols = (int(v) for v in d["shape"])
        panels = [tuple(int(v) for v in p) for p in d["panels"]]
        if any(len(p) != 4 for p in panels):
            raise ValueError(f"panels must be (row0, row1, col0, col1) each, got {d['panels']!r}")
        return cls(
            shape=(rows, cols),
            pixel_size_mm=float(d["pixel_size_mm"]),
            distance_mm=float(d["distance_mm"]),
            beam_x=float(d["beam_x"]),
            beam_y=float(d["beam_y"]),
            panels=tuple((p[0], p[1], p[2], p[3]) for p in panels),
        )


def tiled_panels(shape=(1024, 1024), grid=(4, 4), gap=4):
    """Panel ranges for a `grid` of equal panels separated by `gap` insensitive pixels.

    Returns
    -------
    tuple of (row0, row1, col0, col1)
    """
    rows, cols = shape
    ph = (rows - gap * (grid[0] - 1)) // grid[0]
    pw = (cols - gap * (grid[1] - 1)) // grid[1]
    return tuple(
        (i * (ph + gap), i * (ph + gap) + ph, j * (pw + gap), j * (pw + gap) + pw)
        for i in range(grid[0])
        for j in range(grid[1])
    )


def default_geometry() -> DetectorGeometry:
    """The simulated ~1 Mpix detector: 4 x 4 panels of 253 x 253 pixels, 100 um, 90 mm."""
    return DetectorGeometry(panels=tiled_panels())


def panel_mask(geometry: DetectorGeometry) -> np.ndarray:
    """Boolean array, True on sensitive pixels (inside a panel)."""
    mask = np.zeros(geometry.shape, dtype=bool)
    for r0, r1, c0, c1 in geometry.panels:
        mask[r0:r1, c0:c1] = True
    return mask


def pixel_s_magnitude(geometry: DetectorGeometry, wavelength: float) -> np.ndarray:
    """|s| = 2 sin(theta) / lambda of every pixel, in inverse Angstrom (float32 array)."""
    rows, cols = np.indices(geometry.shape, dtype=np.float32)
    x = (cols - geometry.beam_x) * geometry.pixel_size_mm
    y = (rows - geometry.beam_y) * geometry.pixel_size_mm
    two_theta = np.arctan(np.hypot(x, y) / geometry.distance_mm)
    return (2.0 * np.sin(two_theta / 2.0) / wavelength).astype(np.float32)


def scattering_vectors(A: np.ndarray, hkl: np.ndarray) -> np.ndarray:
    """s = A @ h for every row of `hkl` (n, 3) -> (n, 3), inverse Angstrom."""
    return hkl @ A.T


def excitation_error(s: np.ndarray, wavelength: float) -> np.ndarray:
    """Signed distance of each reciprocal-lattice point from the Ewald sphere (1/Angstrom).

    Positive outside the sphere. ``|s0 + s| - 1/lambda`` with s0 = (0, 0, 1/lambda).
    """
    k = 1.0 / wavelength
    return np.sqrt(s[:, 0] ** 2 + s[:, 1] ** 2 + (s[:, 2] + k) ** 2) - k


def project_to_detector(s: np.ndarray, wavelength: float, geometry: DetectorGeometry):
    """Detector pixel coordinates (col, row) where the diffracted rays of `s` hit the plane.

    The ray direction is s0 + s; rays not heading towards the detector get NaN.

    Returns
    -------
    col, row : ndarray of float
    """
    k = 1.0 / wavelength
    kx, ky, kz = s[:, 0], s[:, 1], s[:, 2] + k
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(kz > 0, geometry.distance_mm / kz, np.nan)
    col = kx * scale / geometry.pixel_size_mm + geometry.beam_x
    row = ky * scale / geometry.pixel_size_mm + geometry.beam_y
    return col, row


def pixel_to_s(col, row, wavelength: float, geometry: DetectorGeometry) -> np.ndarray:
    """Scattering vector s (n, 3) of detector positions, assuming they lie on the Ewald sphere."""
    x = (np.asarray(col, dtype=float) - geometry.beam_x) * geometry.pixel_size_mm
    y = (np.asarray(row, dtype=float) - geometry.beam_y) * geometry.pixel_size_mm
    z = np.full_like(x, geometry.distance_mm)
    ray = np.stack([x, y, z], axis=1)
    ray /= np.linalg.norm(ray, axis=1, keepdims=True)
    return (ray - np.array([0.0, 0.0, 1.0])) / wavelength


def reciprocal_basis(cell: tuple[float, ...]) -> np.ndarray:
    """B matrix (columns a*, b*, c*) of a unit cell (a, b, c, alpha, beta, gamma), 1/Angstrom."""
    import gemmi

    uc = gemmi.UnitCell(*cell)
    return np.array(uc.frac.mat.tolist()).T


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A rotation matrix drawn uniformly from SO(3) (via a random unit quaternion)."""
    q = rng.standard_normal(4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )
