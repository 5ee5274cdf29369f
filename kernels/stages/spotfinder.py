"""Bragg spot finding on calibrated frames (peakfinder8-style, vectorised).

A pixel is a spot candidate when it stands more than ``snr`` standard deviations above the
background of its resolution ring (ring statistics are computed on a subsample, with the bright
pixels clipped). Candidates that are the local maximum of their 3 x 3 neighbourhood become spots
when their ``window`` x ``window`` box has at least ``min_pix`` pixels above the threshold and a
background-subtracted sum of at least ``min_photons``. Of peaks closer than ``min_separation``
pixels only the brightest is kept: a wide spot's noise has several local maxima, which would
otherwise be counted as several spots. Only candidates are ever touched pixel by pixel, so the
cost is a few passes over the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels.crystal.panel_image import ImageGeometry, beam_radius_px


@dataclass(frozen=True)
class SpotParams:
    """Tunable spot-finding parameters (the trial's ``spotfinder`` section)."""

    snr: float = 6.0
    min_photons: float = 10.0  # background-subtracted sum over the box
    min_pix: int = 2
    max_pix: int = 30
    window: int = 5  # box edge for sums and centroids, odd
    ring_width_px: float = 8.0
    edge: int = 3  # ignore candidates this close to the array border
    sample_stride: int = 2
    min_separation: float = 3.0  # pixels; closer peaks are one spot


@dataclass(frozen=True)
class Spots:
    """Spots of one frame (arrays of equal length).

    col, row : centroid in pixels; intensity : background-subtracted photons in the box;
    npix : pixels above threshold in the box; background : ring mean (photons/pixel).
    """

    col: np.ndarray
    row: np.ndarray
    intensity: np.ndarray
    npix: np.ndarray
    background: np.ndarray

    def __len__(self) -> int:
        return len(self.col)


@dataclass(frozen=True)
class SpotPlan:
    """Per-detector precomputation for :func:`find_spots`."""

    params: SpotParams
    ring: np.ndarray  # ring index of every pixel, flattened
    n_rings: int
    sample: np.ndarray  # flat indices of the good pixels used for ring statistics
    sample_ring: np.ndarray
    box: np.ndarray  # flat offsets of the window
    box_dr: np.ndarray
    box_dc: np.ndarray
    neighbours: np.ndarray  # flat offsets of the 8 neighbours
    valid: np.ndarray  # flat bool: good pixel away from the border
    sample_count: np.ndarray  # float per ring: sampled pixels (a ring in a central hole: 0)
    ring_pixels: np.ndarray  # flat indices of the valid pixels, ring by ring
    ring_start: np.ndarray  # ring r's pixels are ring_pixels[ring_start[r]:ring_start[r + 1]]

    @property
    def sampled(self) -> np.ndarray:
        """Bool per ring: has statistics."""
        return self.sample_count > 0


def plan_spotfinding(geometry: ImageGeometry, mask: np.ndarray, params: SpotParams = SpotParams()):
    """Precompute ring indices, the statistics subsample and window offsets for a detector
    (flat, or multi-panel laid out as a :class:`~kernels.crystal.panel_image.PanelImage`)."""
    rows, cols = geometry.shape
    radius = beam_radius_px(geometry)
    ring = (radius / params.ring_width_px).astype(np.int64)
    s = params.sample_stride
    sub = np.zeros(geometry.shape, dtype=bool)
    sub[::s, ::s] = True
    sample = np.flatnonzero(sub & mask)
    h = params.window // 2
    dr, dc = (
        a.ravel() for a in np.meshgrid(np.arange(-h, h + 1), np.arange(-h, h + 1), indexing="ij")
    )
    nb = [(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1) if (i, j) != (0, 0)]
    edge = max(params.edge, h + 1)
    valid = mask.copy()
    valid[:edge], valid[-edge:], valid[:, :edge], valid[:, -edge:] = False, False, False, False
    n_rings = int(ring.max()) + 1
    good = np.flatnonzero(valid)
    # int16 rings sort by radix (fast); the pixels of a ring stay in ascending order
    ring_pixels = good[np.argsort(ring.ravel()[good].astype(np.int16), kind="stable")]
    ring_start = np.searchsorted(ring.ravel()[ring_pixels], np.arange(n_rings + 1))
    return SpotPlan(
        params,
        ring.ravel(),
        n_rings,
        sample,
        ring.ravel()[sample],
        dr * cols + dc,
        dr,
        dc,
        np.array([i * cols + j for i, j in nb]),
        valid.ravel(),
        np.bincount(ring.ravel()[sample], minlength=n_rings).astype(np.float64),
        ring_pixels,
        ring_start,
    )


def ring_sums(values: np.ndarray, rings: np.ndarray, n_rings: int):
    """Sum and sum of squares of `values` per ring (float64)."""
    return (
        np.bincount(rings, values, minlength=n_rings),
        np.bincount(rings, values * values, minlength=n_rings),
    )


def moments(count: np.ndarray, total: np.ndarray, square: np.ndarray):
    """Mean and standard deviation from per-ring counts, sums and sums of squares (0 for a
    ring without values)."""
    mean = total / np.maximum(count, 1.0)
    return mean, np.sqrt(np.maximum(square / np.maximum(count, 1.0) - mean * mean, 0.0))


def ring_statistics(flat: np.ndarray, plan: SpotPlan, clip: float = 3.0):
    """Mean and standard deviation of each resolution ring, bright pixels clipped once; the
    standard deviation no lower than the counting noise (square root) of the unclipped mean.

    The floor is for photon-counting frames: there nearly every pixel is 0 and the clipping
    removes all the single photons, leaving a ring of zeros whose standard deviation (0) would
    make every single photon a spot candidate. Photons are never less noisy than Poisson; on
    frames with read noise the clipped deviation is mostly above the floor (on the simulator's
    raw frames the floor acts in a few outer rings only). The clipped sums are the full ones
    minus those of the few bright pixels, so the sample is summed once.

    Returns
    -------
    mean, std : ndarray (n_rings,)
    """
    values, rings = flat[plan.sample], plan.sample_ring
    total, square = ring_sums(values, rings, plan.n_rings)
    mean, std = moments(plan.sample_count, total, square)
    bright = ~(values < (mean + clip * std)[rings])  # NaN counts as bright, as clipped
    count = plan.sample_count - np.bincount(rings[bright], minlength=plan.n_rings)
    bright_total, bright_square = ring_sums(values[bright], rings[bright], plan.n_rings)
    clipped_mean, clipped_std = moments(count, total - bright_total, square - bright_square)
    return clipped_mean, np.maximum(clipped_std, np.sqrt(np.maximum(mean, 0.0)))


def ring_thresholds(flat: np.ndarray, plan: SpotPlan):
    """Background mean and candidate threshold (``mean + snr * std``) of each ring.

    A ring without statistics (no good pixel sampled) has no candidates: its 0 threshold
    would otherwise make nearly every pixel of the frame a candidate.

    Returns
    -------
    mean, threshold : ndarray (n_rings,)
    """
    mean, std = ring_statistics(flat, plan)
    threshold = mean + plan.params.snr * np.maximum(std, 0.1)
    return mean, np.where(plan.sampled, threshold, np.inf)


LOW_RING_PIXELS = 0.02  # share of the frame searched ring by ring, below the scanning level


def candidates(flat: np.ndarray, threshold: np.ndarray, plan: SpotPlan) -> np.ndarray:
    """Flat indices (ascending) of the valid pixels above their ring's threshold.

    One scan of the frame finds the pixels above a level; the rings whose threshold lies below
    it, holding at most LOW_RING_PIXELS of the frame, are searched pixel by pixel instead. So
    a small ring with a low threshold (a handful of sampled pixels, all 0 on a photon-counting
    frame) does not make every photon of the frame a candidate.
    """
    order = np.argsort(threshold, kind="stable")
    covered = np.cumsum(np.diff(plan.ring_start)[order])
    n_low = int(np.searchsorted(covered, LOW_RING_PIXELS * flat.size))
    level = np.append(threshold[order], np.inf)[n_low]
    found = np.flatnonzero(flat > level)
    found = found[plan.valid[found]]
    found = found[flat[found] > threshold[plan.ring[found]]]
    if n_low == 0:
        return found
    low = np.concatenate(
        [plan.ring_pixels[plan.ring_start[r] : plan.ring_start[r + 1]] for r in order[:n_low]]
    )
    values = flat[low]
    low = low[(values > threshold[plan.ring[low]]) & (values <= level)]  # the rest: found
    return np.sort(np.concatenate([found, low]))


def distinct_peaks(peaks: np.ndarray, intensity: np.ndarray, cols: int, separation: float):
    """Indices of the peaks kept when, of any two closer than `separation`, the weaker goes."""
    if len(peaks) < 2 or separation <= 0:
        return np.arange(len(peaks))
    # scipy on first use: a run's prepare imports this module to check trial parameters
    from scipy.spatial import cKDTree

    xy = np.c_[peaks % cols, peaks // cols].astype(float)
    pairs = cKDTree(xy).query_pairs(separation, output_type="ndarray")
    if len(pairs) == 0:
        return np.arange(len(peaks))
    weaker = np.where(intensity[pairs[:, 0]] < intensity[pairs[:, 1]], pairs[:, 0], pairs[:, 1])
    keep = np.ones(len(peaks), dtype=bool)
    keep[weaker] = False
    return np.flatnonzero(keep)


def find_spots(photons: np.ndarray, plan: SpotPlan) -> Spots:
    """Find Bragg spots in a calibrated frame.

    Parameters
    ----------
    photons : (rows, cols) float32, calibrated, bad pixels 0
    plan : SpotPlan from :func:`plan_spotfinding`

    Returns
    -------
    Spots
    """
    p = plan.params
    flat = photons.reshape(-1)
    mean, threshold = ring_thresholds(flat, plan)
    cand = candidates(flat, threshold, plan)
    values = flat[cand]
    neighbours = flat[cand[:, None] + plan.neighbours]
    # strict maximum against the earlier half of the neighbours, >= against the later half,
    # so a plateau of equal pixels yields exactly one spot
    is_max = (values[:, None] > neighbours[:, :4]).all(axis=1) & (
        values[:, None] >= neighbours[:, 4:]
    ).all(axis=1)
    peaks = cand[is_max]
    box = flat[peaks[:, None] + plan.box]
    bg = mean[plan.ring[peaks]]
    npix = (box > threshold[plan.ring[peaks]][:, None]).sum(axis=1)
    signal = np.maximum(box - bg[:, None], 0.0)
    intensity = (box - bg[:, None]).sum(axis=1)
    keep = (npix >= p.min_pix) & (npix <= p.max_pix) & (intensity >= p.min_photons)
    peaks, signal, intensity, npix, bg = (
        peaks[keep],
        signal[keep],
        intensity[keep],
        npix[keep],
        bg[keep],
    )
    brightest = distinct_peaks(peaks, intensity, photons.shape[1], p.min_separation)
    peaks, signal, intensity, npix, bg = (
        a[brightest] for a in (peaks, signal, intensity, npix, bg)
    )
    weight = signal.sum(axis=1)
    cols = photons.shape[1]
    row = peaks // cols + (signal * plan.box_dr).sum(axis=1) / weight
    col = peaks % cols + (signal * plan.box_dc).sum(axis=1) / weight
    return Spots(col, row, intensity, npix, bg)


def recentred(photons: np.ndarray, col, row, background, radius: float, passes: int = 2):
    """Centroids of spots recomputed over a disc of `radius` pixels (background-subtracted,
    positive pixels only), each pass around the previous centroid.

    The spot finder's ``window`` box truncates wide spots and pulls their centroids towards
    the peak pixel; a disc matched to the measured spot width does not. Spots too close to the
    array border keep their centroids.
    """
    col, row = np.array(col, float), np.array(row, float)
    r = int(np.ceil(radius))
    d = np.arange(-r, r + 1)
    dr, dc = (a.ravel() for a in np.meshgrid(d, d, indexing="ij"))
    rows, cols = photons.shape
    inside = (np.minimum(col, row) > r + 1) & (col < cols - r - 2) & (row < rows - r - 2)
    bg = np.asarray(background, float)[inside][:, None]
    c, w = col[inside], row[inside]
    for _ in range(passes):
        rr = np.rint(w).astype(np.int64)[:, None] + dr
        cc = np.rint(c).astype(np.int64)[:, None] + dc
        disc = (rr - w[:, None]) ** 2 + (cc - c[:, None]) ** 2 <= radius**2
        signal = np.maximum(photons[rr, cc] - bg, 0.0) * disc
        total = np.maximum(signal.sum(axis=1), 1e-9)
        c = np.where(signal.sum(axis=1) > 0, (signal * cc).sum(axis=1) / total, c)
        w = np.where(signal.sum(axis=1) > 0, (signal * rr).sum(axis=1) / total, w)
    col[inside], row[inside] = c, w
    return col, row
