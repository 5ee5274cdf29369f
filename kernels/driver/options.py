"""The options of ``python -m kernels process``, as one frozen object (built by the CLI)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessOptions:
    """What to process, where to, and how.

    Attributes
    ----------
    run, out : Path
        Run directory (``<exp>/runs/rNNNN``) and the run's output directory.
    calib, params : Path or None
        Calibration file (default: the run's snapshot or ``<exp>/calib/calibration.h5``) and
        trial parameters (JSON; default parameters without it).
    trial : str
        Trial name recorded with the results.
    experiment : str or None
        Experiment the run is logged under; default :attr:`experiment_name`.
    db : str or None
        Results DB URL; with it (or under mpiexec) the MPI driver runs.
    cache_dir : Path or None
        Node-local cache of per-rank results (default ``<out>/cache``).
    batch : int
        Work items handed to a rank per request.
    """

    run: Path
    out: Path
    calib: Path | None = None
    params: Path | None = None
    trial: str = "default"
    experiment: str | None = None
    db: str | None = None
    cache_dir: Path | None = None
    batch: int = 4

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise ValueError(f"batch must be at least 1, got {self.batch}")

    @property
    def experiment_name(self) -> str:
        """``experiment``, else the ``<exp>`` of ``<exp>/runs/rNNNN``.

        The pipeline passes the beamtime's experiment name, which its HPC folder need not carry.
        """
        return self.experiment or Path(self.run).resolve().parent.parent.name

    @property
    def cache_folder(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else Path(self.out) / "cache"
