"""The multi-panel detector model: flat special case, rigid moves, prediction round trip."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.crystal.detector import Detector, Panel, axis_rotation, from_flat
from kernels.crystal.geometry import default_geometry, pixel_to_s


@pytest.mark.parametrize("split", [False, True])
def test_flat_plane_as_panels_gives_the_same_s(split):
    geometry = default_geometry()
    det = from_flat(geometry, split_panels=split)
    assert len(det.panels) == (16 if split else 1)
    rng = np.random.default_rng(1)
    p = rng.integers(0, len(det.panels), 5000)
    fs = np.array([rng.uniform(0, det.panels[i].shape[1]) for i in p])
    ss = np.array([rng.uniform(0, det.panels[i].shape[0]) for i in p])
    col = fs + np.array([det.panels[i].fs0 for i in p]) - 0.5
    row = ss + np.array([det.panels[i].ss0 for i in p]) - 0.5
    ours = det.pixel_to_s(p, fs, ss, 1.3)
    assert np.abs(ours - pixel_to_s(col, row, 1.3, geometry)).max() < 1e-9


def tilted_detector() -> Detector:
    base = from_flat(default_geometry(), split_panels=True)
    quads = {
        f"q{q}": tuple(f"p{i}" for i in range(16) if (i // 8) * 2 + (i % 4) // 2 == q)
        for q in range(4)
    }
    det = Detector(base.panels, {**quads, "detector": tuple(quads)})
    det = det.moved("q1", axis_rotation([1, 0.3, 0], np.degrees(0.004)), (0.2, -0.1, 0.5))
    return det.moved("p8", axis_rotation([0, 0, 1], np.degrees(0.01)), (0.05, 0.0, -0.3))


def test_project_inverts_pixel_to_s_on_a_tilted_detector():
    det = tilted_detector()
    rng = np.random.default_rng(2)
    p = rng.integers(0, 16, 3000)
    fs = rng.uniform(0, 253, 3000)
    ss = rng.uniform(0, 253, 3000)
    s = det.pixel_to_s(p, fs, ss, 1.0)
    panel, fs2, ss2 = det.project(s, 1.0)
    assert np.array_equal(panel, p)
    assert np.abs(fs2 - fs).max() < 1e-8 and np.abs(ss2 - ss).max() < 1e-8


def test_rays_into_gaps_and_backwards_hit_nothing():
    det = tilted_detector()
    gap = det.lab_position([0], [253.5], [10.0])  # just past the first panel's fast edge
    panel, fs, _ = det.intersect(np.vstack([gap, [[0.0, 0.0, -1.0]]]))
    assert list(panel) == [-1, -1] and np.isnan(fs).all()


def test_rigid_group_move_keeps_the_group_shape():
    det = tilted_detector()
    before = from_flat(default_geometry(), split_panels=True)
    members = [det.panel_index(n) for n in det.group_panels("q1")]
    assert len(members) == 4
    a, b = det.corners[members], before.corners[members]
    # distances inside the group are kept; panels outside q1 (except p8) did not move
    da = np.linalg.norm(a[:, None] - a[None], axis=-1)
    db = np.linalg.norm(b[:, None] - b[None], axis=-1)
    assert np.allclose(da, db, atol=1e-9)
    assert not np.allclose(a, b)
    still = [i for i in range(16) if i not in members and i != 8]
    assert np.array_equal(det.corners[still], before.corners[still])


def test_bad_groups_are_refused():
    panel = Panel("a", (0, 0, 100), (0.1, 0, 0), (0, 0.1, 0), 0, 10, 0, 10)
    with pytest.raises(ValueError, match="unknown members"):
        Detector((panel,), {"g": ("a", "zz")})
    with pytest.raises(ValueError, match="not unique"):
        Detector((panel, panel))
