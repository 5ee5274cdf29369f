"""Peak lists in the CXI layout Cheetah and OM write: read, write, and place on panels.

``/entry_1/result_1/nPeaks`` (events,) counts each event's peaks; ``peakXPosRaw``,
``peakYPosRaw`` and ``peakTotalIntensity`` (events, max_peaks) hold them, zero-padded. X/Y are
fs/ss of the raw data array with pixel centres at integers (CrystFEL adds 0.5 when it reads
them, to its pixel-corner coordinates; :func:`locate_on_panels` does the same).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from kernels.crystal.detector import Detector

GROUP = "/entry_1/result_1"
FIELDS = ("peakXPosRaw", "peakYPosRaw", "peakTotalIntensity")


class PeakFileError(ValueError):
    """A CXI peak list that is missing or inconsistent; the message names the file."""


def write_cxi_peaks(path: str | Path, peaks: list[np.ndarray], max_peaks: int | None = None):
    """Write per-event peaks, each (n, 3) = (fs_raw, ss_raw, intensity), into `path`.

    The file is opened for appending, so the peaks can sit beside the frames.
    """
    width = max_peaks or max((len(p) for p in peaks), default=0) or 1
    table = np.zeros((3, len(peaks), width), dtype=np.float32)
    counts = np.zeros(len(peaks), dtype=np.int32)
    for event, p in enumerate(peaks):
        p = np.asarray(p, dtype=np.float32).reshape(-1, 3)
        if len(p) > width:
            raise PeakFileError(f"{path}: event {event} has {len(p)} peaks > max {width}")
        table[:, event, : len(p)] = p.T
        counts[event] = len(p)
    with h5py.File(path, "a") as f:
        if GROUP in f:
            del f[GROUP]
        group = f.create_group(GROUP)
        group["nPeaks"] = counts
        for name, values in zip(FIELDS, table):
            group[name] = values


def read_cxi_peaks(path: str | Path) -> list[np.ndarray]:
    """Per-event peaks (n, 3) = (fs_raw, ss_raw, intensity) of a CXI file.

    Raises
    ------
    PeakFileError
        No peak list, fields of different shapes, or a count larger than the table.
    """
    try:
        with h5py.File(path, "r") as f:
            missing = [n for n in ("nPeaks", *FIELDS) if f"{GROUP}/{n}" not in f]
            if missing:
                raise PeakFileError(f"{path}: no CXI peak list ({GROUP}/{missing[0]} is absent)")
            counts = f[f"{GROUP}/nPeaks"][()].astype(int)
            table = [f[f"{GROUP}/{n}"][()] for n in FIELDS]
    except OSError as exc:
        raise PeakFileError(f"{path}: not a readable HDF5 file ({exc})") from None
    shapes = {t.shape for t in table}
    if len(shapes) != 1 or table[0].ndim != 2 or table[0].shape[0] != len(counts):
        raise PeakFileError(
            f"{path}: peak fields disagree in shape {sorted(shapes)} / {counts.shape}"
        )
    if counts.size and (counts.max() > table[0].shape[1] or counts.min() < 0):
        raise PeakFileError(f"{path}: nPeaks exceeds the {table[0].shape[1]} peak columns")
    return [np.stack([t[e, :n] for t in table], axis=1) for e, n in enumerate(counts)]


def locate_on_panels(detector: Detector, fs_raw, ss_raw, block: int = 0):
    """Panel and panel-local (fs, ss) pixel-corner coordinates of raw data-array positions.

    Positions on no panel of `block` get panel -1 and NaN coordinates.
    """
    fs_raw = np.asarray(fs_raw, dtype=float) + 0.5
    ss_raw = np.asarray(ss_raw, dtype=float) + 0.5
    panel = np.full(fs_raw.shape, -1)
    for i, p in enumerate(detector.panels):
        inside = (p.block == block) & (fs_raw >= p.fs0) & (fs_raw < p.fs1)
        inside &= (ss_raw >= p.ss0) & (ss_raw < p.ss1)
        panel[inside] = i
    found = panel >= 0
    fs0 = np.array([p.fs0 for p in detector.panels])[panel]
    ss0 = np.array([p.ss0 for p in detector.panels])[panel]
    return panel, np.where(found, fs_raw - fs0, np.nan), np.where(found, ss_raw - ss0, np.nan)
