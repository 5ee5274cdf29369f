"""Guards against wrong solutions: per image (does the solution explain the spots?) and per run
(did most hits fail for the same reason?).

A right orientation in the right geometry puts nearly every spot of a hit within a pixel or
two of its prediction; a wrong one, or a right one on a detector whose beam centre or distance
is off, leaves most spots unexplained even when a loosened rms gate lets its few fitted spots
through. So after refinement the fraction of *all* the image's spots within ``outlier_px`` of
a prediction must reach ``min_explained_fraction``, whatever the rms gate says.

At the end of a run, if most hits were refused by the same stage, or most of the indexed ones
by refinement, the run is marked ``suspect`` in summary.json with a reason a user can act on.
"""

from __future__ import annotations

import re
from collections import Counter

from kernels.stages.refinement import RefinementError

SUSPECT_REFUSED_FRACTION = 0.5  # of the indexed hits refused by refinement
SUSPECT_NOT_INDEXED_FRACTION = 0.9  # of the hits (misses with ice rings may pass as hits)
MIN_HITS_FOR_VERDICT = 10


def check_explains_spots(n_explained: int, n_spots: int, min_fraction: float) -> None:
    """Raise RefinementError when the solution explains too small a fraction of the spots."""
    fraction = n_explained / max(n_spots, 1)
    if fraction < min_fraction:
        raise RefinementError(
            f"the solution explains only {100 * fraction:.0f} % of the {n_spots} spots "
            f"(< {100 * min_fraction:.0f} %, refinement.min_explained_fraction): a wrong "
            "orientation, or a beam centre / detector distance that is off"
        )


def run_suspect(results) -> dict | None:
    """``{"reason": ...}`` when the run's hits mostly failed in a way that points at the setup
    (geometry, cell, gates), else None. `results` are the run's ImageResults."""
    hits = [r for r in results if r.hit]
    indexed = [r for r in hits if r.status in ("indexed", "refined", "integrated")]
    if len(hits) < MIN_HITS_FOR_VERDICT:
        return None
    refused = [r for r in indexed if r.status == "indexed"]
    if indexed and len(refused) >= SUSPECT_REFUSED_FRACTION * len(indexed):
        kinds = Counter(re.sub(r"\d+(\.\d+)?", "N", r.reason) for r in refused)
        common = kinds.most_common(1)[0][0]
        example = next(r.reason for r in refused if re.sub(r"\d+(\.\d+)?", "N", r.reason) == common)
        return {
            "reason": f"{len(refused)} of {len(indexed)} indexed hits refused by refinement "
            f"(most often like: {example}); check the detector geometry (beam centre, "
            "distance) before loosening refinement gates",
        }
    not_indexed = len(hits) - len(indexed)
    if not_indexed >= SUSPECT_NOT_INDEXED_FRACTION * len(hits):
        return {
            "reason": f"{not_indexed} of {len(hits)} hits not indexed; check the target cell "
            "and space group (crystal.*) and the detector geometry",
        }
    return None
