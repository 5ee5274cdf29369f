"""A multi-panel frame laid out as one 2-D image, so every flat kernel runs on it unchanged.

The panels of a stacked detector (panel i = ``frame[i]``, all of one shape, see
:func:`kernels.io.readers.base.stacked`) are placed one below the other with ``gap`` rows of
masked pixels between them. The gap is wider than any box a kernel reads around a pixel
(spot window, integration annulus, spot-width measurement), so no box ever reaches another
panel: each panel is searched, integrated and measured on its own pixels only, exactly as the
flat detector's panels are separated by its gaps. An image pixel (col, row), pixel centres at
integers as on the flat detector, is panel ``row // pitch`` at panel coordinates
(fs, ss) = (col + 0.5, row % pitch + 0.5) (pixel corners at integers, CrystFEL's count).

:class:`PanelImage` has the flat geometry's ``shape`` and ``panels`` (row and column ranges of
each panel in the image), so calibration and the spot finder's plan take it as they take the
flat one; the functions at the end of this module are the only places where the two differ:
pixel -> s, s -> pixel, and which pixels a ring index or a prediction margin refers to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels.crystal.detector import Detector, lab_to_s
from kernels.crystal.geometry import (
    DetectorGeometry,
    panel_mask,
    pixel_s_magnitude,
    pixel_to_s,
    project_to_detector,
)

GAP_ROWS = 16  # > the widest box half-width (integration annulus 7 px + 1, spot width 6 px)


@dataclass(frozen=True)
class PanelImage:
    """A stacked multi-panel detector seen as one image of panels separated by `gap` rows.

    Parameters
    ----------
    detector : Detector
        Stacked: panel i is data block i with fs/ss from 0, every panel of one shape.
    gap : int
        Masked rows between consecutive panels.
    """

    detector: Detector
    gap: int = GAP_ROWS

    def __post_init__(self) -> None:
        shapes = {p.shape for p in self.detector.panels}
        offsets = {(p.fs0, p.ss0) for p in self.detector.panels}
        blocks = [p.block for p in self.detector.panels]
        if len(shapes) != 1 or offsets != {(0, 0)} or blocks != list(range(len(blocks))):
            raise ValueError(
                "a panel image needs a stacked detector (panel i = block i, one shape)"
            )

    @property
    def panel_shape(self) -> tuple[int, int]:
        return self.detector.panels[0].shape

    @property
    def pitch(self) -> int:
        """Image rows from one panel's first row to the next's."""
        return self.panel_shape[0] + self.gap

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.detector.panels) * self.pitch, self.panel_shape[1]

    @property
    def panels(self) -> tuple[tuple[int, int, int, int], ...]:
        """(row0, row1, col0, col1) of each panel in the image (the flat geometry's form)."""
        rows, cols = self.panel_shape
        return tuple((i * self.pitch, i * self.pitch + rows, 0, cols) for i in range(self.n))

    @property
    def n(self) -> int:
        return len(self.detector.panels)

    @property
    def pixel_size_mm(self) -> float:
        return float(np.median([p.pixel_size_mm for p in self.detector.panels]))

    def image(self, frame: np.ndarray, fill=0) -> np.ndarray:
        """The (panels, rows, cols) `frame` as this layout's 2-D image, gaps set to `fill`.

        Raises
        ------
        ValueError
            A frame whose shape is not (panels, rows, cols) of this detector.
        """
        expected = (self.n, *self.panel_shape)
        if frame.shape != expected:
            raise ValueError(f"frame of shape {frame.shape} does not fit the geometry {expected}")
        out = np.full((self.n, self.pitch, self.panel_shape[1]), fill, dtype=frame.dtype)
        out[:, : self.panel_shape[0]] = frame
        return out.reshape(self.shape)

    def frame(self, image: np.ndarray) -> np.ndarray:
        """The stacked (panels, rows, cols) frame of one of this layout's images."""
        rows = self.panel_shape[0]
        return image.reshape(self.n, self.pitch, self.panel_shape[1])[:, :rows].copy()

    def mask(self, panel_mask: np.ndarray | None = None) -> np.ndarray:
        """Good pixels of the image: the panels' (all of them without `panel_mask`), not gaps."""
        good = np.ones((self.n, *self.panel_shape), bool) if panel_mask is None else panel_mask
        return self.image(np.asarray(good, bool), fill=False)

    def locate(self, col, row):
        """Panel index and panel coordinates (fs, ss) of image positions (pixel centres at
        integers); positions in a gap get the nearest panel above them."""
        row = np.asarray(row, float)
        panel = np.clip(np.floor((row + 0.5) / self.pitch).astype(int), 0, self.n - 1)
        return panel, np.asarray(col, float) + 0.5, row - panel * self.pitch + 0.5

    def to_image(self, panel, fs, ss):
        """Image (col, row) of panel coordinates."""
        return np.asarray(fs, float) - 0.5, np.asarray(panel) * self.pitch + np.asarray(ss) - 0.5

    def pixel_to_s(self, col, row, wavelength: float) -> np.ndarray:
        panel, fs, ss = self.locate(col, row)
        return self.detector.pixel_to_s(panel, fs, ss, wavelength)

    def project(self, s: np.ndarray, wavelength: float):
        """Image (col, row) where the rays of `s` hit a panel; NaN for rays into gaps or off."""
        panel, fs, ss = self.detector.project(s, wavelength)
        col, row = self.to_image(np.maximum(panel, 0), fs, ss)
        return np.where(panel >= 0, col, np.nan), np.where(panel >= 0, row, np.nan)

    def project_onto(self, s: np.ndarray, wavelength: float, panel):
        """Image (col, row) where the rays of `s` meet the planes of the given panels (each
        ray its own panel, bounds not checked): residuals stay smooth at panel edges."""
        p = np.asarray(panel, int)
        ray = np.asarray(s, float) + np.array([0.0, 0.0, 1.0 / wavelength])
        F, S, C = self.detector.fast[p], self.detector.slow[p], self.detector.corners[p]
        normal = np.cross(F, S)
        t = np.einsum("nk,nk->n", normal, C) / np.einsum("nk,nk->n", normal, ray)
        local = t[:, None] * ray - C
        # solve local = fs F + ss S in the panel's plane (least squares = exact in the plane)
        G = np.stack([F, S], axis=2)  # (n, 3, 2)
        normal_eq = np.einsum("nki,nkj->nij", G, G)
        fs_ss = np.linalg.solve(normal_eq, np.einsum("nki,nk->ni", G, local)[..., None])[..., 0]
        return self.to_image(p, fs_ss[:, 0], fs_ss[:, 1])

    def lab_positions(self) -> np.ndarray:
        """Lab positions (panels, rows, cols, 3) mm of every panel pixel's centre."""
        rows, cols = self.panel_shape
        ss, fs = (a.ravel() + 0.5 for a in np.indices((rows, cols), dtype=float))
        return np.stack(
            [self.detector.lab_position(np.full(fs.size, i), fs, ss) for i in range(self.n)]
        ).reshape(self.n, rows, cols, 3)

    def s_magnitude(self, wavelength: float) -> np.ndarray:
        """|s| (1/A, float32) of every image pixel, 0 in the gaps."""
        s = lab_to_s(self.lab_positions().reshape(-1, 3), wavelength)
        return self.image(np.linalg.norm(s, axis=1).reshape(self.n, *self.panel_shape), 0.0).astype(
            np.float32
        )

    def radius_px(self) -> np.ndarray:
        """Each image pixel's distance from the beam in pixels of a flat detector at the
        panels' mean distance with the same scattering angle (for resolution rings)."""
        lab = self.lab_positions()
        tan_2theta = np.hypot(lab[..., 0], lab[..., 1]) / lab[..., 2]
        distance = float(np.mean(self.detector.corners[:, 2]))
        return self.image(tan_2theta * distance / self.pixel_size_mm, fill=0.0)


ImageGeometry = DetectorGeometry | PanelImage


def image_pixel_to_s(col, row, wavelength: float, geometry: ImageGeometry) -> np.ndarray:
    """Scattering vectors (n, 3) of image positions, flat or multi-panel."""
    if isinstance(geometry, PanelImage):
        return geometry.pixel_to_s(col, row, wavelength)
    return pixel_to_s(col, row, wavelength, geometry)


def image_projection(s: np.ndarray, wavelength: float, geometry: ImageGeometry):
    """Image (col, row) of the rays of `s`, flat or multi-panel (NaN where they miss)."""
    if isinstance(geometry, PanelImage):
        return geometry.project(s, wavelength)
    return project_to_detector(s, wavelength, geometry)


def projection_near(s: np.ndarray, wavelength: float, geometry: ImageGeometry, row_observed):
    """Predicted image (col, row) of spots observed at rows `row_observed`: on a multi-panel
    detector, on the plane of the panel each spot was seen on (refinement's residuals)."""
    if isinstance(geometry, PanelImage):
        panel, _, _ = geometry.locate(np.zeros(len(s)), row_observed)
        return geometry.project_onto(s, wavelength, panel)
    return project_to_detector(s, wavelength, geometry)


def beam_radius_px(geometry: ImageGeometry) -> np.ndarray:
    """Every image pixel's distance from the beam centre in pixels (resolution rings)."""
    if isinstance(geometry, PanelImage):
        return geometry.radius_px()
    r, c = np.indices(geometry.shape)
    return np.hypot(c - geometry.beam_x, r - geometry.beam_y)


def image_s_magnitude(geometry: ImageGeometry, wavelength: float) -> np.ndarray:
    """|s| (1/A, float32) of every image pixel (the simulator's background rings)."""
    if isinstance(geometry, PanelImage):
        return geometry.s_magnitude(wavelength)
    return pixel_s_magnitude(geometry, wavelength)


def sensitive_pixels(geometry: ImageGeometry) -> np.ndarray:
    """True on pixels inside a panel (not in a gap)."""
    if isinstance(geometry, PanelImage):
        return geometry.mask()
    return panel_mask(geometry)


def panel_coordinates(col, row, geometry: ImageGeometry):
    """Panel index and (fs, ss) in that panel (pixel corners at integers from the panel's first
    pixel) of image positions (pixel centres at integers): a multi-panel detector's panels, the
    flat detector's mask panels (the nearest one; the whole plane is panel 0 without any)."""
    if isinstance(geometry, PanelImage):
        return geometry.locate(col, row)
    col, row = np.asarray(col, float), np.asarray(row, float)
    rows, cols = geometry.shape
    r0, r1, c0, c1 = np.array(geometry.panels or ((0, rows, 0, cols),), float).T
    outside_c = np.maximum(np.maximum(c0 - 0.5 - col[:, None], col[:, None] - (c1 - 0.5)), 0)
    outside_r = np.maximum(np.maximum(r0 - 0.5 - row[:, None], row[:, None] - (r1 - 0.5)), 0)
    panel = np.argmin(np.hypot(outside_c, outside_r), axis=1)
    return panel, col - c0[panel] + 0.5, row - r0[panel] + 0.5
