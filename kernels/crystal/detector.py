"""Multi-panel detector model: flat panels anywhere in 3-D, grouped in a rigid hierarchy.

Conventions (the sfxflow lab frame, as in :mod:`kernels.crystal.geometry`): millimetres, the sample at
the origin, the beam along +z, s0 = (0, 0, 1/lambda), s = A h. A panel pixel with continuous
coordinates (fs, ss), pixel corners at integers (CrystFEL and DIALS both count so, the first
pixel's centre is (0.5, 0.5)), lies at ``corner + fs * fast + ss * slow`` where ``fast`` and
``slow`` are vectors one pixel long. ``fs``/``ss`` are panel-local; the panel's pixels sit at
``[ss0:ss1, fs0:fs1]`` of data block ``block`` (one 2-D array of a frame, 0 when a frame has one).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from kernels.crystal.geometry import DetectorGeometry


@dataclass(frozen=True)
class Panel:
    """One flat rectangular sensor.

    Parameters
    ----------
    name : str
    corner : (3,) float
        Lab position (mm) of the outer corner of the panel's first pixel.
    fast, slow : (3,) float
        Lab displacement (mm) of one pixel step along the array's columns (fast) and rows (slow).
    fs0, fs1, ss0, ss1 : int
        Half-open column and row ranges of the panel's pixels in its data block.
    block : int
        Index of the data block (the panel-stack index, 0 for single-array frames).
    """

    name: str
    corner: tuple[float, float, float]
    fast: tuple[float, float, float]
    slow: tuple[float, float, float]
    fs0: int
    fs1: int
    ss0: int
    ss1: int
    block: int = 0

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) = (ss, fs) extent of the panel."""
        return self.ss1 - self.ss0, self.fs1 - self.fs0

    @property
    def pixel_size_mm(self) -> float:
        return float(np.linalg.norm(self.fast))


@dataclass(frozen=True)
class Detector:
    """Panels plus named rigid groups (each a tuple of panel or group names).

    ``groups`` maps a group name to its members; a member is a panel name or another group's
    name, so ASIC -> module -> quadrant -> detector is a tree of groups.
    """

    panels: tuple[Panel, ...]
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [p.name for p in self.panels]
        if len(set(names)) != len(names):
            raise ValueError("panel names are not unique")
        for group, members in self.groups.items():
            unknown = [m for m in members if m not in self.groups and m not in names]
            if unknown:
                raise ValueError(f"group {group!r} names unknown members {unknown}")

    @property
    def corners(self) -> np.ndarray:
        return np.array([p.corner for p in self.panels], dtype=float)

    @property
    def fast(self) -> np.ndarray:
        return np.array([p.fast for p in self.panels], dtype=float)

    @property
    def slow(self) -> np.ndarray:
        return np.array([p.slow for p in self.panels], dtype=float)

    def panel_index(self, name: str) -> int:
        for i, p in enumerate(self.panels):
            if p.name == name:
                return i
        raise KeyError(f"no panel named {name!r}")

    def group_panels(self, group: str) -> list[str]:
        """Names of every panel in `group`, through nested groups."""
        out: list[str] = []
        for member in self.groups[group]:
            out += self.group_panels(member) if member in self.groups else [member]
        return out

    def lab_position(self, panel, fs, ss) -> np.ndarray:
        """Lab positions (n, 3) mm of panel-local pixel coordinates (vectorised)."""
        p = np.asarray(panel, dtype=int)
        fs = np.asarray(fs, dtype=float)[..., None]
        ss = np.asarray(ss, dtype=float)[..., None]
        return self.corners[p] + fs * self.fast[p] + ss * self.slow[p]

    def pixel_to_s(self, panel, fs, ss, wavelength: float) -> np.ndarray:
        """Scattering vectors s (n, 3) of pixel positions, assuming they are on the Ewald sphere."""
        return lab_to_s(self.lab_position(panel, fs, ss), wavelength)

    def moved(
        self, group: str, rotation: np.ndarray, shift_mm=(0.0, 0.0, 0.0), pivot_mm=None
    ) -> Detector:
        """A copy with every panel of `group` rotated about `pivot_mm` then shifted (rigidly).

        The pivot defaults to the mean corner of the group's panels.
        """
        members = set(self.group_panels(group)) if group in self.groups else {group}
        idx = [i for i, p in enumerate(self.panels) if p.name in members]
        R = np.asarray(rotation, dtype=float)
        pivot = self.corners[idx].mean(axis=0) if pivot_mm is None else np.asarray(pivot_mm)
        panels = list(self.panels)
        for i in idx:
            p = panels[i]
            corner = R @ (np.asarray(p.corner) - pivot) + pivot + np.asarray(shift_mm)
            panels[i] = replace(
                p,
                corner=vector3(corner),
                fast=vector3(R @ np.asarray(p.fast)),
                slow=vector3(R @ np.asarray(p.slow)),
            )
        return replace(self, panels=tuple(panels))

    def project(self, s: np.ndarray, wavelength: float):
        """Where the diffracted rays of `s` (n, 3) hit the detector: panel, fs, ss.

        Rays that hit no panel get panel -1 and NaN coordinates. Where panels overlap in
        projection, the one nearest the sample wins.

        Returns
        -------
        panel : (n,) int; fs, ss : (n,) float
        """
        ray = np.asarray(s, dtype=float) + np.array([0.0, 0.0, 1.0 / wavelength])
        return self.intersect(ray)

    def intersect(self, ray: np.ndarray):
        """Panel and pixel coordinates where rays from the sample along `ray` (n, 3) hit."""
        F, S, C = self.fast, self.slow, self.corners
        normal = np.cross(F, S)  # (P, 3)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.einsum("pk,pk->p", normal, C)[None, :] / (ray @ normal.T)  # (n, P)
        local = t[..., None] * ray[:, None, :] - C[None, :, :]  # (n, P, 3)
        # dual basis: fs = local . (S x n) / (F . (S x n)), ss likewise
        fs_dual = np.cross(S, normal)
        ss_dual = np.cross(normal, F)
        fs_dual /= np.einsum("pk,pk->p", F, fs_dual)[:, None]
        ss_dual /= np.einsum("pk,pk->p", S, ss_dual)[:, None]
        fs = np.einsum("npk,pk->np", local, fs_dual)
        ss = np.einsum("npk,pk->np", local, ss_dual)
        width = np.array([p.fs1 - p.fs0 for p in self.panels])
        height = np.array([p.ss1 - p.ss0 for p in self.panels])
        hit = (t > 0) & (fs >= 0) & (fs < width) & (ss >= 0) & (ss < height)
        t_hit = np.where(hit, t, np.inf)
        best = np.argmin(t_hit, axis=1)
        rows = np.arange(len(ray))
        found = np.isfinite(t_hit[rows, best])
        panel = np.where(found, best, -1)
        return (
            panel,
            np.where(found, fs[rows, best], np.nan),
            np.where(found, ss[rows, best], np.nan),
        )


def lab_to_s(lab_mm: np.ndarray, wavelength: float) -> np.ndarray:
    """s = (unit ray - unit beam) / lambda for lab positions (n, 3) seen from the sample."""
    lab = np.asarray(lab_mm, dtype=float)
    ray = lab / np.linalg.norm(lab, axis=-1, keepdims=True)
    return (ray - np.array([0.0, 0.0, 1.0])) / wavelength


def vector3(v) -> tuple[float, float, float]:
    """A 3-vector as a tuple of floats (the panels' immutable form)."""
    return (float(v[0]), float(v[1]), float(v[2]))


def axis_rotation(axis, degrees: float) -> np.ndarray:
    """Rotation matrix of `degrees` about `axis` (right-handed, Rodrigues)."""
    axis = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    angle = np.radians(degrees)
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def from_flat(geometry: DetectorGeometry, split_panels: bool = False) -> Detector:
    """Today's flat plane as a one-panel detector (or one panel per mask panel).

    Flat pixel (col, row) with the centre at integers maps to panel coordinates
    (col - fs0 + 0.5, row - ss0 + 0.5), so pixel -> s is the same to rounding.
    """
    px = geometry.pixel_size_mm
    rows, cols = geometry.shape
    ranges = geometry.panels if split_panels and geometry.panels else ((0, rows, 0, cols),)
    panels = tuple(
        Panel(
            name=f"p{i}",
            corner=(
                (c0 - 0.5 - geometry.beam_x) * px,
                (r0 - 0.5 - geometry.beam_y) * px,
                geometry.distance_mm,
            ),
            fast=(px, 0.0, 0.0),
            slow=(0.0, px, 0.0),
            fs0=c0,
            fs1=c1,
            ss0=r0,
            ss1=r1,
        )
        for i, (r0, r1, c0, c1) in enumerate(ranges)
    )
    return Detector(panels, {"detector": tuple(p.name for p in panels)})
