"""Integrated reflections: the per-image table and the per-run file ``integrated.h5``.

The file holds one row per integrated reflection (columns of equal length, group
``reflections``: hkl, intensity, sigma, partiality, the predicted position both in the chain's
image, col/row, and on the detector, panel/fs/ss, and d) and one row per integrated image
(group ``images``: chunk, event, wavelength, refined orientation U and cell, and A = U B of
that cell, s = A h in 1/Angstrom in the lab frame; ``images/tags/<name>``: the per-event tags
the run's files carry, NaN where an image has none), plus the trial, cell and space group as
attributes, so a merge can refuse files that do not belong together.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import h5py
import numpy as np

from kernels.crystal.geometry import reciprocal_basis
from kernels.io.atomic import atomic_path

INTEGRATED_FILE = "integrated.h5"
INTS = ("hkl", "panel")  # integer reflection columns


class ReflectionFileError(Exception):
    """A missing, unreadable or inconsistent integrated-reflections file."""


@dataclass(frozen=True)
class Reflections:
    """Integrated reflections of one image (arrays of equal length).

    hkl : (n, 3) int. intensity, sigma : background-subtracted photons and their error.
    partiality : estimated fraction of the full reflection recorded. col, row : predicted
    position in the image the chain ran on (pixel centres at integers: the flat frame, or a
    multi-panel frame's panels laid one below the other). d : resolution (Angstrom).
    panel, fs, ss : the same position on the detector: the panel (index in the geometry's
    panel order; the flat detector's mask panels) and its pixel coordinates in that panel
    (pixel corners at integers from the panel's first pixel, CrystFEL's count).
    """

    hkl: np.ndarray
    intensity: np.ndarray
    sigma: np.ndarray
    partiality: np.ndarray
    col: np.ndarray
    row: np.ndarray
    d: np.ndarray
    panel: np.ndarray
    fs: np.ndarray
    ss: np.ndarray

    def __len__(self) -> int:
        return len(self.intensity)


@dataclass
class IntegratedImage:
    """One image's integration result, as collected for the run file."""

    chunk: int
    event: int
    wavelength: float
    U: np.ndarray
    cell: tuple
    reflections: Reflections
    tags: dict[str, float] = field(default_factory=dict)  # the event's laser_on, delay_ns...
    # the Gaussian profile its partiality was estimated with (adaptive integration: its own)
    domain_size_a: float = float("nan")
    mosaicity_deg: float = float("nan")


def write_integrated(
    path, images: list[IntegratedImage], attrs: dict, chunk_files: list[str] | None = None
) -> Path:
    """Write the run's integrated reflections atomically (``attrs``: trial, cell, space_group,
    run; ``chunk_files``: the name of each chunk's file, so each image names its source file)."""
    path = Path(path)
    n = [len(im.reflections) for im in images]
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for key, value in attrs.items():
            f.attrs[key] = value
        g = f.create_group("images")
        g["chunk"] = np.array([im.chunk for im in images], dtype=np.int32)
        g["event"] = np.array([im.event for im in images], dtype=np.int64)
        if chunk_files is not None:
            names = [chunk_files[im.chunk] for im in images]
            g.create_dataset("file", data=names, dtype=h5py.string_dtype())
        g["wavelength"] = np.array([im.wavelength for im in images], dtype=np.float64)
        g["U"] = np.array([im.U for im in images], dtype=np.float64).reshape(-1, 3, 3)
        g["cell"] = np.array([im.cell for im in images], dtype=np.float64).reshape(-1, 6)
        for name in ("domain_size_a", "mosaicity_deg"):
            g[name] = np.array([getattr(im, name) for im in images], dtype=np.float64)
        for name in sorted({name for im in images for name in im.tags}):
            g[f"tags/{name}"] = np.array([im.tags.get(name, np.nan) for im in images], np.float64)
        A = [im.U @ reciprocal_basis(im.cell) for im in images]  # s = A h in the lab frame
        g["A"] = np.array(A, dtype=np.float64).reshape(-1, 3, 3)
        r = f.create_group("reflections")
        r["image"] = np.repeat(np.arange(len(images), dtype=np.int32), n)
        for fld in fields(Reflections):
            parts = [getattr(im.reflections, fld.name) for im in images]
            empty = np.zeros((0, 3) if fld.name == "hkl" else 0, int if fld.name in INTS else float)
            r[fld.name] = np.concatenate(parts) if parts else empty
    return path


def read_integrated(path) -> tuple[dict, dict, dict]:
    """Attributes, image columns and reflection columns of an ``integrated.h5`` file.

    The image columns hold ``tags``: tag name -> per-image values (empty without tags), and
    ``file``, each image's source file name (str), where the writer knew it.
    """
    path = Path(path)
    if path.is_dir():
        path = path / INTEGRATED_FILE
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            images = {k: f["images"][k][()] for k in f["images"] if k != "tags"}
            tags = f["images"].get("tags", {})
            images["tags"] = {name: tags[name][()] for name in tags}
            if "file" in images:
                images["file"] = images["file"].astype(str)
            refl = {k: f["reflections"][k][()] for k in f["reflections"]}
    except (OSError, KeyError) as exc:
        raise ReflectionFileError(
            f"{path}: not a readable integrated-reflections file ({exc})"
        ) from None
    return attrs, images, refl
