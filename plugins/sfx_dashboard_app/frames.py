"""A frame as the viewer draws it: panels placed where they are in the lab, one compact binary.

The panels' pixels are laid onto one raster in the detector plane (x right, y down, seen along
the beam; raster pixel = the smallest panel pixel; nearest raster cell per pixel centre), so a
multi-panel frame looks as the detector does. The raster travels as little-endian ``uint16``
counts after a JSON header: 0 = no pixel there (gaps between panels, drawn apart), else
value = (count - 1) * ``step`` (gzip: gaps and dark background compress well); the browser
applies contrast itself, so moving the slider needs no new request.
"""

from __future__ import annotations

import gzip
import json
import struct
from dataclasses import dataclass

import numpy as np

from kernels.crystal.detector import Detector

from .frame_source import FoundSpots

MIN_STEP = 0.1  # quantisation of the sent values (photons, or the file's unit): below noise
MAX_COUNT = 65535


@dataclass(frozen=True)
class Layout:
    """Where each data pixel lands on the raster, and how lab millimetres map to raster pixels."""

    width: int
    height: int
    pixel_mm: float
    x0_mm: float  # lab x, y of the raster's top-left corner
    y0_mm: float
    source: np.ndarray  # flat index into the data blocks of every placed pixel
    target: np.ndarray  # its flat raster index

    def to_raster(self, lab_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raster coordinates (u, v; pixel corners at integers) of lab positions (n, 3) mm."""
        u = (lab_mm[:, 0] - self.x0_mm) / self.pixel_mm
        return u, (lab_mm[:, 1] - self.y0_mm) / self.pixel_mm


def _panel_xy(panel, axis: int) -> np.ndarray:
    """Lab coordinate ``axis`` (mm) of every pixel centre of a panel, shape (rows, cols)."""
    rows, cols = panel.shape
    along_ss = (np.arange(rows) + 0.5)[:, None] * panel.slow[axis]
    along_fs = (np.arange(cols) + 0.5)[None, :] * panel.fast[axis]
    return panel.corner[axis] + along_ss + along_fs


def layout(detector: Detector, block_shape: tuple[int, int]) -> Layout:
    """The raster of a detector whose data blocks are ``(n, *block_shape)``."""
    rows, cols = block_shape
    pixel_mm = min(p.pixel_size_mm for p in detector.panels)
    xs = [_panel_xy(p, 0) for p in detector.panels]
    ys = [_panel_xy(p, 1) for p in detector.panels]
    x0 = min(float(x.min()) for x in xs) - pixel_mm / 2
    y0 = min(float(y.min()) for y in ys) - pixel_mm / 2
    us = [((x - x0) / pixel_mm).astype(np.int64) for x in xs]
    vs = [((y - y0) / pixel_mm).astype(np.int64) for y in ys]
    width = max(int(u.max()) for u in us) + 1
    height = max(int(v.max()) for v in vs) + 1
    sources = []
    for p in detector.panels:
        ss, fs = np.ogrid[p.ss0 : p.ss1, p.fs0 : p.fs1]
        sources.append(((p.block * rows + ss) * cols + fs).ravel())
    return Layout(
        width,
        height,
        pixel_mm,
        x0,
        y0,
        np.concatenate(sources),
        np.concatenate([(v * width + u).ravel() for u, v in zip(us, vs)]),
    )


def place(frame_layout: Layout, blocks: np.ndarray) -> np.ndarray:
    """The data blocks laid out on the raster (float32, gaps NaN)."""
    raster = np.full(frame_layout.height * frame_layout.width, np.nan, dtype=np.float32)
    raster[frame_layout.target] = blocks.reshape(-1)[frame_layout.source]
    return raster.reshape(frame_layout.height, frame_layout.width)


def panel_of(detector: Detector, block, fs, ss) -> np.ndarray:
    """Index of the panel holding each block position (-1 outside every panel)."""
    block, fs, ss = (np.asarray(a, dtype=float)[:, None] for a in (block, fs, ss))
    p = detector.panels
    inside = (
        (block == np.array([q.block for q in p]))
        & (fs >= np.array([q.fs0 for q in p]))
        & (fs < np.array([q.fs1 for q in p]))
        & (ss >= np.array([q.ss0 for q in p]))
        & (ss < np.array([q.ss1 for q in p]))
    )
    return np.where(inside.any(axis=1), inside.argmax(axis=1), -1)


def lab_positions(detector: Detector, block, fs, ss) -> np.ndarray:
    """Lab positions (n, 3) mm of block positions; rows outside every panel are NaN."""
    index = panel_of(detector, block, fs, ss)
    inside = index >= 0
    lab = np.full((len(index), 3), np.nan)
    if inside.any():
        p = index[inside]
        fs0 = np.array([q.fs0 for q in detector.panels])[p]
        ss0 = np.array([q.ss0 for q in detector.panels])[p]
        lab[inside] = detector.lab_position(
            p, np.asarray(fs)[inside] - fs0, np.asarray(ss)[inside] - ss0
        )
    return lab


def raster_points(frame_layout: Layout, detector: Detector, block, fs, ss) -> list[list[float]]:
    """[[u, v], ...] on the raster of block positions (outside every panel: left out)."""
    lab = lab_positions(detector, block, fs, ss)
    keep = np.isfinite(lab[:, 0])
    u, v = frame_layout.to_raster(lab[keep])
    return [[round(float(a), 2), round(float(b), 2)] for a, b in zip(u, v)]


def quantised(raster: np.ndarray) -> tuple[np.ndarray, float]:
    """(uint16 counts, step): gaps (NaN) 0, else 1 + value / step, negative values as 0."""
    top = float(np.nanmax(raster)) if np.isfinite(raster).any() else 0.0
    step = max(MIN_STEP, top / (MAX_COUNT - 1))
    counts = np.clip(np.rint(raster / step), 0, MAX_COUNT - 1) + 1
    return np.nan_to_num(counts, nan=0.0).astype("<u2"), step


def frame_message(header: dict, raster: np.ndarray) -> bytes:
    """``u32 header length | JSON header | pad to 2 bytes | uint16 raster``, gzipped."""
    counts, step = quantised(raster)
    positive = raster[::3, ::3][
        raster[::3, ::3] > 0
    ]  # a ninth of the pixels: plenty for a percentile
    text = json.dumps(
        {
            **header,
            "width": raster.shape[1],
            "height": raster.shape[0],
            "step": step,
            # a starting contrast: the brightest 0.5 % of the lit pixels saturate
            "auto_max": float(np.percentile(positive, 99.5)) if positive.size else 1.0,
        }
    ).encode()
    pad = b" " * ((4 + len(text)) % 2)
    body = struct.pack("<I", len(text) + len(pad)) + text + pad + counts.tobytes()
    return gzip.compress(body, compresslevel=1)


def spots_header(frame_layout: Layout, detector: Detector, spots: FoundSpots) -> list:
    """The found spots as raster points for the header."""
    return raster_points(frame_layout, detector, spots.block, spots.fs, spots.ss)
