"""Hit classification: does a frame show a crystal's diffraction?"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HitParams:
    """A frame is a hit when it has at least `min_spots` spots (the trial's ``hitfinder`` section)."""

    min_spots: int = 15


def is_hit(n_spots: int, params: HitParams = HitParams()) -> bool:
    """Classify a frame from its spot count.

    Blank shots and crystals too weak to index show a handful of noise peaks at most; a real
    lattice shows tens to hundreds of spots on this detector.
    """
    return n_spots >= params.min_spots
