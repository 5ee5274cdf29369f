"""What a geometry refinement found: per-panel residuals before and after, the motion, a map."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kernels.crystal.detector import Detector
from kernels.geomrefine.refine import GeometryResult
from kernels.geomrefine.spots import IndexedSpots

REPORT_FILE = "geometry_refinement.json"
MAP_FILE = "residual_map.png"
ARROW_SCALE = 20.0  # a 0.5-pixel mean residual draws as 10 pixels


def panel_residuals(detector: Detector, spots: IndexedSpots, residuals: np.ndarray) -> list[dict]:
    """Per panel: spots, mean fs/ss residual and rms (pixels); panels without spots left out."""
    rows = []
    for i, panel in enumerate(detector.panels):
        mine = residuals[spots.panel == i]
        if len(mine):
            rows.append(
                {
                    "panel": panel.name,
                    "spots": int(len(mine)),
                    "mean_fs_px": round(float(mine[:, 0].mean()), 4),
                    "mean_ss_px": round(float(mine[:, 1].mean()), 4),
                    "rms_px": round(float(np.sqrt(np.mean(np.sum(mine**2, axis=1)))), 4),
                }
            )
    return rows


def describe(start: Detector, result: GeometryResult, spots: IndexedSpots) -> dict:
    """The JSON report: rms before/after, the detector's shift, every group's motion."""
    motion = result.motion
    return {
        "spots": len(spots),
        "images": len(spots.A),
        "rms_before_px": round(result.rms_before_px, 4),
        "rms_after_px": round(result.rms_after_px, 4),
        "inlier_fraction": round(result.inlier_fraction, 4),
        "detector_shift_mm": [round(float(v), 5) for v in motion[:3]],
        "cell_scale": round(result.cell_scale, 7),  # refined cell lengths / the held ones
        "groups": [
            {
                "panels": g,
                "du_mm": round(float(du), 5),
                "dv_mm": round(float(dv), 5),
                "rotation_deg": round(float(a), 5),
            }
            for g, (du, dv, a) in zip(result.refined_groups, motion[3:].reshape(-1, 3))
        ],  # fmt: skip
        "held_groups": result.held_groups,
        "panels_before": panel_residuals(start, spots, result.residuals_before),
        "panels_after": panel_residuals(result.detector, spots, result.residuals_after),
    }


def write_residual_map(detector: Detector, spots: IndexedSpots, result: GeometryResult, path):
    """Mean residual arrows per panel at its centre, before and after, on the lab x-y plane."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 5.5), sharex=True, sharey=True)
    for ax, residuals, title in (
        (axes[0], result.residuals_before, f"before: rms {result.rms_before_px:.2f} px"),
        (axes[1], result.residuals_after, f"after: rms {result.rms_after_px:.2f} px"),
    ):
        for i, panel in enumerate(detector.panels):
            rows, cols = panel.shape
            outline = np.array([[0, 0], [cols, 0], [cols, rows], [0, rows], [0, 0]], dtype=float)
            xy = detector.lab_position(np.full(5, i), outline[:, 0], outline[:, 1])
            ax.plot(xy[:, 0], xy[:, 1], color="0.7", lw=0.6)
            mine = residuals[spots.panel == i]
            if len(mine):
                centre = detector.lab_position([i], [cols / 2], [rows / 2])[0]
                fs, ss = mine.mean(axis=0) * ARROW_SCALE
                arrow = fs * detector.fast[i] + ss * detector.slow[i]
                ax.arrow(centre[0], centre[1], arrow[0], arrow[1], width=0.3, color="C3")
        ax.set_title(title)
        ax.set_aspect("equal")
        ax.set_xlabel("lab x (mm)")
    axes[0].set_ylabel("lab y (mm)")
    fig.suptitle(f"mean spot residual per panel (arrows {ARROW_SCALE:g}x)")
    fig.savefig(Path(path), dpi=90)
    plt.close(fig)
