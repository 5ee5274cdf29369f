"""The simulated detector's electronics: photons in, raw ADU out, and its calibration constants."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels.crystal.panel_image import ImageGeometry, sensitive_pixels
from kernels.stages.calibration import Calibration


@dataclass(frozen=True)
class DetectorModel:
    """Per-pixel pedestal and gain, bad pixels and noise of one detector.

    Attributes
    ----------
    pedestal : float32 ADU
    gain : float32 ADU per photon (0 on dead pixels)
    hot : bool, pixels stuck at a high value
    good : bool, sensitive pixels that are neither dead nor hot (the calibration mask)
    sensitive : bool, pixels inside a panel (not in a gap)
    read_noise : float, ADU rms
    common_mode : float, ADU, half-range of the per-panel shot-to-shot offset
    """

    geometry: ImageGeometry  # flat, or a multi-panel detector as a PanelImage
    pedestal: np.ndarray
    gain: np.ndarray
    hot: np.ndarray
    good: np.ndarray
    sensitive: np.ndarray
    read_noise: float = 4.0
    common_mode: float = 15.0

    @classmethod
    def generate(
        cls,
        geometry: ImageGeometry,
        rng: np.random.Generator,
        dead_fraction: float = 1e-3,
        hot_fraction: float = 5e-4,
    ) -> DetectorModel:
        shape = geometry.shape
        sensitive = sensitive_pixels(geometry)
        pedestal = rng.normal(1200.0, 40.0, shape).astype(np.float32)
        gain = np.clip(rng.normal(20.0, 1.0, shape), 15.0, 25.0).astype(np.float32)
        dead = rng.random(shape) < dead_fraction
        hot = (rng.random(shape) < hot_fraction) & ~dead
        gain[dead | ~sensitive] = 0.0
        pedestal[~sensitive] = 0.0
        return cls(geometry, pedestal, gain, hot, sensitive & ~dead & ~hot, sensitive)

    def calibration(self) -> Calibration:
        """The constants a dark run and a flat field would give (the calibration file)."""
        return Calibration(self.pedestal, np.where(self.good, self.gain, 0.0), self.good)

    def __post_init__(self):
        # Read noise is white: a frame's noise is a random window into a longer stream of
        # pre-drawn Gaussian noise (a view, no per-frame draw), which is statistically the same.
        n = int(np.prod(self.geometry.shape))
        stream = (
            np.random.default_rng(12345).standard_normal(2 * n, dtype=np.float32) * self.read_noise
        )
        object.__setattr__(self, "_noise", stream)
        object.__setattr__(self, "_base", self.pedestal + 0.5)  # + 0.5: round on the cast
        object.__setattr__(self, "_hot", np.flatnonzero(self.hot))
        object.__setattr__(self, "_gaps", np.flatnonzero(~self.sensitive))

    def to_raw(self, photons: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Raw uint16 frame of a photon-count image: gain, pedestal, common mode, noise, bad pixels."""
        n = photons.size
        start = rng.integers(0, len(self._noise) - n)
        adu = self.gain * photons
        adu += self._base
        adu += self._noise[start : start + n].reshape(photons.shape)
        for (r0, r1, c0, c1), offset in zip(
            self.geometry.panels,
            rng.uniform(-self.common_mode, self.common_mode, len(self.geometry.panels)),
        ):
            adu[r0:r1, c0:c1] += offset
        flat = adu.reshape(-1)
        flat[self._hot] = 60000.0
        flat[self._gaps] = 0.0  # panel gaps read nothing
        np.clip(adu, 0, 65535, out=adu)
        return adu.astype(np.uint16)
