"""File formats of the kernels: the run format, the run-concluded marker, reflections, MTZ,
checkpoints, the computational-weather plot, and atomic writes.

The names below load on first use (PEP 562), so ``import kernels.io.marker`` (standard library
only) never pulls in h5py or numpy.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "kernels.io.atomic": ("Durability", "atomic_path", "write_bytes", "write_json"),
    "kernels.io.checkpoint": (
        "Checkpoint",
        "CheckpointError",
        "read_checkpoint",
        "write_checkpoint",
    ),
    "kernels.io.marker": (
        "MARKER",
        "RUN_NAME",
        "MarkerError",
        "MarkerFile",
        "RunMarker",
        "adler32_file",
        "chunk_name",
        "read_marker",
        "run_name",
        "run_order",
        "write_marker",
    ),
    "kernels.io.mtz": ("MtzError", "read_intensities", "write_merged_mtz"),
    "kernels.io.reflections": (
        "INTEGRATED_FILE",
        "IntegratedImage",
        "ReflectionFileError",
        "Reflections",
        "read_integrated",
        "write_integrated",
    ),
    "kernels.io.runformat": ("Run", "RunFormatError", "open_run", "write_chunk"),
    "kernels.io.weather": ("plot_weather", "segments_from_rows", "stage_segments"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}
__all__ = sorted(_HOME_OF)


def __getattr__(name: str) -> Any:
    if name not in _HOME_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOME_OF[name]), name)


def __dir__() -> list[str]:
    return __all__
