"""How this process was started: under an MPI launcher or not, as which rank; its log format."""

from __future__ import annotations

import logging
import os
import sys

_RANK_VARIABLES = ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK")


def mpi_launched() -> bool:
    """True when this process was started by an MPI launcher (mpiexec/srun)."""
    return any(
        k in os.environ for k in ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE")
    )


def launched_rank() -> int:
    """This process's MPI rank as its launcher set it (0 when not launched by MPI)."""
    for variable in _RANK_VARIABLES:
        value = os.environ.get(variable, "")
        if value.isdigit():
            return int(value)
    return 0


def configure_logging(rank: int, level: int = logging.INFO) -> None:
    """Log records of the kernels to stderr, each line stamped with the MPI rank."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s rank {rank} %(levelname)s %(name)s: %(message)s")
    )
    kernels_log = logging.getLogger("kernels")
    kernels_log.handlers[:] = [handler]  # idempotent when the CLI runs twice in one process
    kernels_log.setLevel(level)
