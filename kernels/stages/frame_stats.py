"""Per-frame quality numbers shown by the dashboard: saturated pixels and a resolution estimate.

Both are cheap (one comparison over the frame, a quantile over the spots) and logged with every
image, so a run's plots need no frame re-read.
"""

from __future__ import annotations

import numpy as np

from kernels.crystal.panel_image import ImageGeometry, image_pixel_to_s

RESOLUTION_QUANTILE = 0.95  # the d of the 95th percentile of |s|: one stray spot does not count


def saturated_pixels(raw: np.ndarray, mask: np.ndarray) -> int:
    """Good pixels at the ADC's full scale (``iinfo(raw.dtype).max``) in a raw integer frame.

    A float frame (already calibrated input) has no full scale: 0.
    """
    if not np.issubdtype(raw.dtype, np.integer):
        return 0
    full_scale = np.iinfo(raw.dtype).max
    if raw.max() < full_scale:  # the usual frame: one reduction instead of a masked count
        return 0
    return int(np.count_nonzero((raw == full_scale) & mask))


def resolution_estimate(col, row, wavelength: float, geometry: ImageGeometry) -> float:
    """Estimated resolution of a frame (Å): d = 1/|s| at the 95th percentile of its spots' |s|.

    0.0 when there is nothing to estimate from (no spot, or no wavelength).
    """
    if len(col) == 0 or not wavelength > 0:
        return 0.0
    s = np.linalg.norm(image_pixel_to_s(col, row, wavelength, geometry), axis=1)
    top = float(np.quantile(s, RESOLUTION_QUANTILE))
    return 1.0 / top if top > 0 else 0.0
