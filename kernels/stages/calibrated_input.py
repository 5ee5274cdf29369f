"""Frames that a facility pipeline already calibrated: photons, keV, or ADU with a known gain."""

from __future__ import annotations

import numpy as np

UNITS = ("photons", "keV", "eV", "ADU")


def to_photons(
    data: np.ndarray,
    unit: str,
    photon_energy_eV: float | None = None,
    adu_per_photon: float | None = None,
) -> np.ndarray:
    """Photon counts (float32) of calibrated frames.

    Parameters
    ----------
    unit : {"photons", "keV", "eV", "ADU"}
        Deposited energy per pixel needs the photon energy; ADU needs the gain.

    Raises
    ------
    ValueError
        An unknown unit or the constant it needs is missing or not positive.
    """
    data = np.asarray(data, dtype=np.float32)
    if unit == "photons":
        return data
    if unit in ("keV", "eV"):
        if not photon_energy_eV or photon_energy_eV <= 0:
            raise ValueError(f"frames in {unit} need a positive photon energy (eV)")
        return data * np.float32((1000.0 if unit == "keV" else 1.0) / photon_energy_eV)
    if unit == "ADU":
        if not adu_per_photon or adu_per_photon <= 0:
            raise ValueError("frames in ADU need a positive gain (ADU per photon)")
        return data / np.float32(adu_per_photon)
    raise ValueError(f"unknown frame unit {unit!r}; expected one of {', '.join(UNITS)}")
