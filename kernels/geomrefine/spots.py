"""Indexed spots of many stills: what detector geometry refinement learns from.

A spot is an observed position (panel, fs, ss in the panel's pixels) of a reflection ``hkl`` on
image ``image``; each image has its orientation ``A`` (s = A h, 1/Angstrom, the sfxflow lab frame)
and wavelength. The file form (``--spots`` of ``refine-geometry``) is one HDF5 file::

    /images/A (m, 3, 3)   /images/wavelength_A (m,)
    /spots/image (n,)   /spots/hkl (n, 3)   /spots/panel (n,)   /spots/fs (n,)   /spots/ss (n,)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np


class SpotsFileError(ValueError):
    """An indexed-spots file is missing, unreadable or inconsistent; the message names it."""


@dataclass(frozen=True)
class IndexedSpots:
    """Observed spots (arrays of length n) and their images' solutions (arrays of length m)."""

    image: np.ndarray
    hkl: np.ndarray
    panel: np.ndarray
    fs: np.ndarray
    ss: np.ndarray
    A: np.ndarray
    wavelength: np.ndarray

    def __len__(self) -> int:
        return len(self.image)

    def select(self, keep: np.ndarray) -> IndexedSpots:
        """The spots where ``keep`` is true (the images are kept whole)."""
        return IndexedSpots(
            self.image[keep], self.hkl[keep], self.panel[keep], self.fs[keep], self.ss[keep],
            self.A, self.wavelength,
        )  # fmt: skip


def write_spots(path, spots: IndexedSpots) -> None:
    """Write ``spots`` in the file form above."""
    with h5py.File(path, "w") as f:
        f["images/A"] = spots.A
        f["images/wavelength_A"] = spots.wavelength
        for name in ("image", "hkl", "panel", "fs", "ss"):
            f[f"spots/{name}"] = getattr(spots, name)


def read_spots(path) -> IndexedSpots:
    """Read and check an indexed-spots file.

    Raises
    ------
    SpotsFileError
        The file is missing or unreadable, a dataset is absent, lengths differ, or a spot names an
        image that is not there.
    """
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            values = {
                "A": np.asarray(f["images/A"], dtype=float),
                "wavelength": np.asarray(f["images/wavelength_A"], dtype=float),
                **{n: np.asarray(f[f"spots/{n}"]) for n in ("image", "hkl", "panel", "fs", "ss")},
            }
    except FileNotFoundError:
        raise SpotsFileError(f"{path}: no such file") from None
    except KeyError as error:
        raise SpotsFileError(f"{path}: lacks a dataset ({error})") from None
    except OSError as error:
        raise SpotsFileError(f"{path}: not a readable HDF5 file ({error})") from None
    n, m = len(values["image"]), len(values["A"])
    if values["A"].shape != (m, 3, 3) or values["wavelength"].shape != (m,):
        raise SpotsFileError(f"{path}: images/A must be (m, 3, 3) with m wavelengths")
    if values["hkl"].shape != (n, 3) or any(len(values[k]) != n for k in ("panel", "fs", "ss")):
        raise SpotsFileError(f"{path}: the spots/ datasets differ in length")
    if n and (values["image"].min() < 0 or values["image"].max() >= m):
        raise SpotsFileError(f"{path}: a spot names an image outside images/ (0..{m - 1})")
    return IndexedSpots(
        values["image"].astype(int), values["hkl"].astype(int), values["panel"].astype(int),
        values["fs"].astype(float), values["ss"].astype(float), values["A"], values["wavelength"],
    )  # fmt: skip


def concatenate(parts: list[IndexedSpots]) -> IndexedSpots:
    """Several images' spots as one set, the images of each part numbered on after the last."""
    offsets = np.cumsum([0] + [len(p.A) for p in parts[:-1]])
    joined = {
        n: np.concatenate([getattr(p, n) for p in parts]) for n in ("hkl", "panel", "fs", "ss")
    }
    return IndexedSpots(
        image=np.concatenate([p.image + k for p, k in zip(parts, offsets)]).astype(int),
        hkl=joined["hkl"].reshape(-1, 3).astype(int),
        panel=joined["panel"].astype(int),
        fs=joined["fs"].astype(float),
        ss=joined["ss"].astype(float),
        A=np.concatenate([p.A.reshape(-1, 3, 3) for p in parts]).reshape(-1, 3, 3),
        wavelength=np.concatenate([p.wavelength for p in parts]).astype(float),
    )


def read_spots_files(paths) -> IndexedSpots:
    """Read several indexed-spots files (several runs) as one, images numbered on.

    Raises
    ------
    SpotsFileError
        As :func:`read_spots`, for the first bad file.
    """
    return concatenate([read_spots(p) for p in paths])
