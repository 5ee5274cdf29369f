"""Jungfrau raw frames to photons: three gain stages, each with its pedestal and gain.

A raw 16-bit word holds the gain stage in bits 15-14 (0 = G0, 1 = G1, 3 = G2; 2 never occurs
on a working module) and the ADC value in bits 13-0. Photons = (ADC - pedestal[stage]) /
gain[stage], the gains in ADU per photon (G1 and G2 negative: their ADC falls with charge).
A G2 word with ADC 0 is the saturated pixel; it and invalid gain bits give NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GAIN_BITS_TO_STAGE = np.array([0, 1, -1, 2], dtype=np.int8)
SATURATED = 0xC000


@dataclass(frozen=True)
class JungfrauCalibration:
    """Per-pixel constants of one module: pedestal and gain (3, rows, cols), ADU and ADU/photon."""

    pedestal: np.ndarray
    gain: np.ndarray

    def __post_init__(self) -> None:
        if self.pedestal.shape != self.gain.shape or self.pedestal.shape[0] != 3:
            raise ValueError(
                f"pedestal {self.pedestal.shape} and gain {self.gain.shape} must both be "
                "(3, rows, cols)"
            )


def gain_stage(raw: np.ndarray) -> np.ndarray:
    """Gain stage 0, 1, 2 of each raw word, -1 where the gain bits are invalid."""
    return GAIN_BITS_TO_STAGE[np.asarray(raw, dtype=np.uint16) >> 14]


def raw_to_photons(raw: np.ndarray, calibration: JungfrauCalibration) -> np.ndarray:
    """Photons (float32, frames broadcast over the module) of raw frames (..., rows, cols).

    NaN where the pixel is saturated or its gain bits are invalid.
    """
    raw = np.asarray(raw, dtype=np.uint16)
    stage = gain_stage(raw)
    adc = (raw & 0x3FFF).astype(np.float32)
    index = np.clip(stage, 0, 2)[None]  # pick each pixel's stage's constants
    pedestal = np.take_along_axis(calibration.pedestal[:, None], index, axis=0)[0]
    gain = np.take_along_axis(calibration.gain[:, None], index, axis=0)[0]
    photons = (adc - pedestal) / gain
    photons[(stage < 0) | (raw == SATURATED)] = np.nan
    return photons.astype(np.float32)


def gains_from_g0(g0: np.ndarray, ratio_g1: float, ratio_g2: float) -> np.ndarray:
    """A (3, rows, cols) gain map from the G0 gain and the G1/G0, G2/G0 ratios.

    Pixels without a G0 gain (NaN) take the module's median.
    """
    g0 = np.where(np.isfinite(g0), g0, np.nanmedian(g0)).astype(np.float32)
    return np.stack([g0, g0 * ratio_g1, g0 * ratio_g2])


def fit_stage_ratio(
    raw: np.ndarray, pedestal: np.ndarray, g0: np.ndarray, photons: np.ndarray, stage: int
) -> float:
    """Median gain ratio gain[stage] / gain[G0] that maps raw onto known photons.

    Uses the pixels of `stage` with more than 2 photons (|photons| > 2) and a G0 gain.
    """
    raw = np.asarray(raw, dtype=np.uint16)
    chosen = (gain_stage(raw) == stage) & (np.abs(photons) > 2) & (raw != SATURATED)
    chosen &= np.isfinite(g0)[None]
    frame, row, col = np.nonzero(chosen)
    adc = (raw[chosen] & 0x3FFF).astype(np.float64)
    if len(adc) == 0:
        raise ValueError(f"no pixel in gain stage {stage} with known photons to fit its gain")
    return float(np.median((adc - pedestal[stage][row, col]) / photons[chosen] / g0[row, col]))
