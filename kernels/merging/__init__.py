"""Merging: the scale-and-merge algorithm, its statistics and ``python -m kernels merge``."""

from kernels.merging.algorithm import Merged, MergeError, MergeParams, Observations, merge
from kernels.merging.statistics import merge_statistics

__all__ = ["MergeError", "MergeParams", "Merged", "Observations", "merge", "merge_statistics"]
