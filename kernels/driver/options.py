"""The options of ``python -m kernels process``, as one frozen object (built by the CLI)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_LIVE_TIMEOUT = 600.0  # seconds without a new chunk before a live job gives up
DEFAULT_EVERY_IMAGES = 200  # a live job's run-so-far merge: published every this many images
DEFAULT_EVERY_SECONDS = 30.0  # ... or seconds, whichever comes first


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
    live : bool
        Follow a run still being acquired: process each chunk as its marker appears, end
        once the run marker is there and every chunk is done.
    live_timeout : float
        Seconds without a new chunk (and no run marker) after which a live job stops as
        stalled (exit code 4), publishing what it processed.
    merge_every_images, merge_every_seconds : int, float
        A live job publishes its run-so-far merge every this many merged images or seconds.
    foreign : bool
        ``run`` is a folder of facility files (CBF, CXI/HDF5 + ``geometry``, ...), not the
        chunk format: read through :func:`kernels.foreign.open_foreign_run`.
    geometry : Path or None
        CrystFEL ``.geom`` of a foreign run (CBF files carry their own).
    adu_per_photon : float
        Gain of a foreign run's dark-subtracted frames.
    event_tags : tuple of (name, field)
        Per-event tags of a foreign run's HDF5/CXI files and the fields holding them.
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
    live: bool = False
    live_timeout: float = DEFAULT_LIVE_TIMEOUT
    merge_every_images: int = DEFAULT_EVERY_IMAGES
    merge_every_seconds: float = DEFAULT_EVERY_SECONDS
    foreign: bool = False
    geometry: Path | None = None
    adu_per_photon: float = 1.0
    event_tags: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise ValueError(f"batch must be at least 1, got {self.batch}")
        if self.merge_every_images < 1 or not self.merge_every_seconds > 0:
            raise ValueError("merge_every_images must be at least 1, merge_every_seconds positive")
        if not self.live_timeout > 0:
            raise ValueError(f"live_timeout must be positive, got {self.live_timeout}")
        if self.foreign and self.live:
            raise ValueError("--live follows the chunk format's markers, not facility files")

    @property
    def experiment_name(self) -> str:
        """``experiment``, else the ``<exp>`` of ``<exp>/runs/rNNNN``.

        The pipeline passes the beamtime's experiment name, which its HPC folder need not carry.
        """
        return self.experiment or Path(self.run).resolve().parent.parent.name

    @property
    def cache_folder(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else Path(self.out) / "cache"
