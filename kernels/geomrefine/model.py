"""The refined detector's parameters: one rigid motion of the whole detector and of each group.

The whole detector moves by a lab shift (x, y: the beam centre; z: the distance). Each rigid
group (a module, a quadrant, an ASIC: whatever level is refined) moves in its own plane: two
shifts along its in-plane axes and a rotation about its normal through its centre. Shifts and
rotations of the groups are gauged to mean zero (the whole detector's shift and the crystals'
orientations carry the common part), which :func:`gauge_residuals` asks of the solver.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from kernels.crystal.detector import Detector, axis_rotation, vector3


@dataclass(frozen=True)
class GroupFrame:
    """Where each group's motion is measured: centre, in-plane axes u, v and normal (mm, unit)."""

    panels: tuple[np.ndarray, ...]  # panel indices of each group
    centre: np.ndarray  # (g, 3)
    u: np.ndarray  # (g, 3)
    v: np.ndarray  # (g, 3)
    normal: np.ndarray  # (g, 3)

    @property
    def n_groups(self) -> int:
        return len(self.panels)

    def group_of_panel(self, n_panels: int) -> np.ndarray:
        """(n_panels,) group index of every panel, -1 for panels in no refined group."""
        owner = np.full(n_panels, -1)
        for g, members in enumerate(self.panels):
            owner[members] = g
        return owner


def group_frames(detector: Detector, groups: list[list[str]]) -> GroupFrame:
    """The frames of ``groups`` (each a list of panel names) on ``detector``.

    Raises
    ------
    ValueError
        A group names an unknown panel, or a panel is in two groups.
    """
    indices = [np.array([detector.panel_index(n) for n in names], dtype=int) for names in groups]
    flat = np.concatenate(indices) if indices else np.array([], dtype=int)
    if len(set(flat.tolist())) != len(flat):
        raise ValueError("a panel is in two refined groups")
    centres, us, vs, normals = [], [], [], []
    for idx in indices:
        heights = np.array([detector.panels[i].shape for i in idx], dtype=float)
        mid = (
            detector.corners[idx]
            + detector.fast[idx] * heights[:, 1:2] / 2
            + detector.slow[idx] * heights[:, 0:1] / 2
        )
        u = detector.fast[idx].sum(axis=0)
        u /= np.linalg.norm(u)
        normal = np.cross(detector.fast[idx], detector.slow[idx]).sum(axis=0)
        normal /= np.linalg.norm(normal)
        v = np.cross(normal, u)
        centres.append(mid.mean(axis=0))
        us.append(u)
        vs.append(v)
        normals.append(normal)
    return GroupFrame(
        tuple(indices), *(np.array(a).reshape(-1, 3) for a in (centres, us, vs, normals))
    )


def moved_panels(detector: Detector, frames: GroupFrame, x: np.ndarray):
    """Corners, fast and slow vectors (p, 3) of every panel after the motion ``x``.

    ``x`` = [global dx, dy, dz (mm); then per group du, dv (mm), rotation (degrees)].
    """
    corners, fast, slow = detector.corners.copy(), detector.fast.copy(), detector.slow.copy()
    per_group = x[3:].reshape(-1, 3)
    for g, idx in enumerate(frames.panels):
        du, dv, angle = per_group[g]
        R = axis_rotation(frames.normal[g], angle)
        shift = du * frames.u[g] + dv * frames.v[g]
        corners[idx] = (corners[idx] - frames.centre[g]) @ R.T + frames.centre[g] + shift
        fast[idx] = fast[idx] @ R.T
        slow[idx] = slow[idx] @ R.T
    return corners + x[:3], fast, slow


def gauge_residuals(x: np.ndarray, weight: float) -> np.ndarray:
    """Mean group shift and rotation (three numbers), scaled by ``weight``: zero at the gauge."""
    per_group = x[3:].reshape(-1, 3)
    if not len(per_group):
        return np.zeros(0)
    return weight * per_group.mean(axis=0)


def moved_detector(detector: Detector, frames: GroupFrame, x: np.ndarray) -> Detector:
    """``detector`` with the motion ``x`` applied (for writing the refined geometry)."""
    corners, fast, slow = moved_panels(detector, frames, x)
    panels = tuple(
        replace(p, corner=vector3(c), fast=vector3(f), slow=vector3(s))
        for p, c, f, s in zip(detector.panels, corners, fast, slow)
    )
    return replace(detector, panels=panels)
