"""The MPI driver of ``python -m kernels process``: producer–consumer over MPI ranks with
results-DB logging, checkpoints and resume (see :mod:`kernels.driver.run`)."""

from kernels.driver.dbpolicy import logger_connections
from kernels.driver.launch import configure_logging, launched_rank, mpi_launched
from kernels.driver.options import (
    DEFAULT_EVERY_IMAGES,
    DEFAULT_EVERY_SECONDS,
    DEFAULT_LIVE_TIMEOUT,
    ProcessOptions,
)
from kernels.driver.protocol import TAG_REQUEST, TAG_WORK
from kernels.driver.run import JobInputError, JobResult, run_mpi

__all__ = [
    "DEFAULT_EVERY_IMAGES",
    "DEFAULT_EVERY_SECONDS",
    "DEFAULT_LIVE_TIMEOUT",
    "TAG_REQUEST",
    "TAG_WORK",
    "JobInputError",
    "JobResult",
    "ProcessOptions",
    "configure_logging",
    "launched_rank",
    "logger_connections",
    "mpi_launched",
    "run_mpi",
]
