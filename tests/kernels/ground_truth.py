"""Readers of the simulator's ground truth and of a processed run's tables (test helpers)."""

from __future__ import annotations

import csv
import json

import h5py
import numpy as np


def read_truth(exp) -> dict:
    with h5py.File(exp / "truth" / "r0001.h5", "r") as f:
        return {
            "hit": f["hit"][()],
            "U": f["U"][()],
            "spots": {k: f["spots"][k][()] for k in f["spots"]},
        }


def read_images(out) -> list[dict]:
    with open(out / "images.csv") as f:
        return list(csv.DictReader(f))


def event_numbers(rows) -> np.ndarray:
    """Run-wide event number of each images.csv row (chunks of 100 events)."""
    return np.array([int(r["chunk"]) * 100 + int(r["event"]) for r in rows])


def summary_of(out) -> dict:
    return json.loads((out / "summary.json").read_text())
