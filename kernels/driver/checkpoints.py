"""Checkpoint policy of the driver: which checkpoint a session resumes from, and when."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

from kernels.driver.parts import PARTS_DIR
from kernels.io.checkpoint import Checkpoint, CheckpointError, read_checkpoint
from kernels.resultsdb import canonical_json
from kernels.stages.pipeline import ProcessingParams

CHECKPOINT_FILE = "checkpoint.json"
log = logging.getLogger(__name__)


def params_digest(params: ProcessingParams) -> str:
    """SHA-256 of the trial parameters: a checkpoint is valid only for the same parameters."""
    return hashlib.sha256(canonical_json(params.to_dict()).encode()).hexdigest()


def load_or_restart_checkpoint(out: Path, run_name: str, n_events: int, trial: str, digest: str):
    """The run's checkpoint; a corrupt or foreign one is reported, set aside, and the run
    restarts clean (a new, empty checkpoint)."""
    path = out / CHECKPOINT_FILE
    try:
        checkpoint = read_checkpoint(path, run_name, trial, digest)
    except CheckpointError as exc:
        log.error(
            "%s; restarting run %s from scratch (bad file kept as %s.corrupt)",
            exc,
            run_name,
            path.name,
        )
        os.replace(path, path.with_name(path.name + ".corrupt"))
        shutil.rmtree(out / PARTS_DIR, ignore_errors=True)
        checkpoint = None
    return checkpoint or Checkpoint(run_name, trial, digest, n_events)
