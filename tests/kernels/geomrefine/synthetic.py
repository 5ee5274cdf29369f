"""Indexed stills on a multi-panel detector whose true geometry we know."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.spatial.transform import Rotation

from kernels.crystal.detector import Detector, Panel, axis_rotation
from kernels.geomrefine.spots import IndexedSpots

CELL = (79.1, 79.1, 38.4)
WAVELENGTH = 1.3
PIXEL = 0.11


def modular_detector(distance_mm: float = 100.0) -> Detector:
    """Two rows of four modules, each two 96 x 192-pixel panels with a 3-pixel gap."""
    panels, groups = [], {}
    for m in range(8):
        x0, y0 = (-2 + m % 4) * 22.0, (-1 + m // 4) * 23.0 + 0.5
        names = []
        for a in range(2):
            name = f"m{m}a{a}"
            corner = (x0 + a * (96 + 3) * PIXEL, y0, distance_mm)
            panels.append(
                Panel(
                    name,
                    corner,
                    (PIXEL, 0, 0),
                    (0, PIXEL, 0),
                    0,
                    96,
                    192 * (m * 2 + a),
                    192 * (m * 2 + a + 1),
                )  # fmt: skip
            )
            names.append(name)
        groups[f"rigid_group_module{m}"] = tuple(names)
    groups["rigid_group_collection_modules"] = tuple(groups)
    return Detector(tuple(panels), groups)


def module_groups(detector: Detector) -> list[list[str]]:
    return [detector.group_panels(g) for g in detector.groups["rigid_group_collection_modules"]]


def with_errors(detector: Detector, seed: int, pixel_mm: float) -> Detector:
    """The issue's errors: beam centre 2 px, distance 0.5 mm, each module 1 px and 0.1 degrees
    (signs drawn so they average to zero: a common in-plane turn is the crystals' to carry)."""
    rng = np.random.default_rng(seed)
    n = len(detector.groups["rigid_group_collection_modules"])
    angles, shifts = (rng.permutation([v, -v] * (n // 2)) for v in (0.1, pixel_mm))
    moved = detector
    for k, group in enumerate(detector.groups["rigid_group_collection_modules"]):
        moved = moved.moved(group, axis_rotation((0, 0, 1), angles[k]), (shifts[k], -shifts[k], 0))
    whole = Detector(moved.panels, {"all": tuple(p.name for p in moved.panels)})
    shifted = whole.moved("all", np.eye(3), (2 * pixel_mm, -2 * pixel_mm, 0.5))
    return Detector(shifted.panels, detector.groups)


def misoriented(spots: IndexedSpots, seed: int, degrees: float = 0.05) -> IndexedSpots:
    """Orientations a little off, as indexing on the wrong geometry leaves them."""
    rng = np.random.default_rng(seed)
    turns = Rotation.from_rotvec(rng.normal(0, np.radians(degrees), (len(spots.A), 3)))
    return replace(spots, A=np.einsum("mij,mjk->mik", turns.as_matrix(), spots.A))


def indexed_stills(detector: Detector, n_images: int, seed: int, noise_px: float = 0.15):
    """Spots within 0.0015 1/A of the Ewald sphere where they meet the detector, plus noise."""
    rng = np.random.default_rng(seed)
    B = np.diag([1 / c for c in CELL])
    r = np.arange(-30, 31)
    hkl = np.stack(np.meshgrid(r, r, np.arange(-16, 17), indexing="ij"), -1).reshape(-1, 3)
    hkl = hkl[np.abs(hkl).sum(1) > 0]
    s0 = np.array([0, 0, 1 / WAVELENGTH])
    images, A_all, rows = [], [], []
    for i in range(n_images):
        A = Rotation.random(random_state=rng).as_matrix() @ B
        s = hkl @ A.T
        on_sphere = np.abs(np.linalg.norm(s + s0, axis=1) - 1 / WAVELENGTH) < 0.0015
        panel, fs, ss = detector.project(s[on_sphere], WAVELENGTH)
        hit = panel >= 0
        images.append(np.full(hit.sum(), i))
        rows.append((hkl[on_sphere][hit], panel[hit], fs[hit], ss[hit]))
        A_all.append(A)
    hkl, panel, fs, ss = (np.concatenate([row[k] for row in rows]) for k in range(4))
    n = len(hkl)
    return IndexedSpots(
        np.concatenate(images), hkl, panel, fs + rng.normal(0, noise_px, n),
        ss + rng.normal(0, noise_px, n), np.array(A_all), np.full(n_images, WAVELENGTH),
    )  # fmt: skip
