"""Integration and the processing funnel against the simulator's ground truth."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from kernels.crystal.detector import from_flat
from kernels.io.reflections import read_integrated
from kernels.io.runformat import open_run
from tests.kernels.ground_truth import read_images, read_truth, summary_of


def test_integrated_intensities_and_partialities_match_truth(lysozyme):
    exp, out, _ = lysozyme
    truth = read_truth(exp)
    spots = truth["spots"]
    _, images, refl = read_integrated(out)
    events = images["chunk"].astype(int) * 100 + images["event"]
    ours, theirs, p_ours, p_theirs = [], [], [], []
    for i, event in enumerate(events):
        mine = refl["image"] == i
        true = spots["event"] == event
        distance, j = cKDTree(np.c_[spots["col"][true], spots["row"][true]]).query(
            np.c_[refl["col"][mine], refl["row"][mine]]
        )
        close = distance < 0.5
        ours.append(refl["intensity"][mine][close]), theirs.append(spots["photons"][true][j[close]])
        (
            p_ours.append(refl["partiality"][mine][close]),
            p_theirs.append(spots["partiality"][true][j[close]]),
        )
    ours, theirs, p_ours, p_theirs = map(np.concatenate, (ours, theirs, p_ours, p_theirs))
    assert len(ours) > 0.7 * len(
        np.flatnonzero(np.isin(spots["event"], events))
    )  # most visible ones found
    assert np.corrcoef(ours, theirs)[0, 1] > 0.99
    assert 0.95 < np.median(ours / theirs) < 1.02
    assert np.corrcoef(p_ours, p_theirs)[0, 1] > 0.95
    assert np.all(refl["sigma"] > 0) and np.isfinite(refl["intensity"]).all()
    assert np.all(refl["partiality"] >= 0.05) and np.all(refl["d"] >= 1.9)


def test_summary_carries_the_funnel(lysozyme):
    _, out, summary = lysozyme
    assert summary == summary_of(out)
    rows = read_images(out)
    statuses = [r["status"] for r in rows]
    assert summary["images"] == len(rows) == 200
    assert summary["hits"] == sum(r["hit"] == "True" for r in rows)
    assert (
        summary["images"]
        >= summary["hits"]
        >= summary["indexed"]
        >= summary["refined"]
        >= summary["integrated"]
        > 0
    )
    assert summary["integrated"] == statuses.count("integrated")
    assert summary["indexed"] == sum(s in ("indexed", "refined", "integrated") for s in statuses)
    for stage in ("calibrate", "spotfind", "index", "refine", "integrate"):
        assert summary["timings"]["stage_seconds"][stage] > 0
    for r in rows:  # every image that stopped says why
        assert (r["status"] == "integrated") == (r["reason"] == "")
    attrs, images, refl = read_integrated(out)
    assert attrs["trial"] == "t1" and attrs["space_group"] == "P 43 21 2"
    assert len(images["event"]) == summary["integrated"]
    assert len(refl["intensity"]) == summary["reflections"]
    assert set(np.unique(refl["image"])) == set(range(summary["integrated"]))


def test_reflections_name_their_panel_and_pixel_in_it(lysozyme):
    exp, out, _ = lysozyme
    _, _, refl = read_integrated(out)
    with open_run(exp / "runs" / "r0001") as run:
        geometry = run.geometry
    panels = from_flat(geometry, split_panels=True)
    plane = from_flat(geometry)  # the whole plane as one panel: flat pixel centres + 0.5
    on_panels = panels.lab_position(refl["panel"], refl["fs"], refl["ss"])
    on_plane = plane.lab_position(
        np.zeros(len(refl["col"]), int), refl["col"] + 0.5, refl["row"] + 0.5
    )
    np.testing.assert_allclose(on_panels, on_plane, atol=1e-9)
    width = np.array([p.fs1 - p.fs0 for p in panels.panels])[refl["panel"]]
    assert len(np.unique(refl["panel"])) == 16  # every mask panel gets reflections
    assert np.all((refl["fs"] > 0) & (refl["fs"] < width) & (refl["ss"] > 0))
