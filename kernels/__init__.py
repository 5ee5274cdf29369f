"""The analysis kernels of sfxflow (``python -m kernels process|merge``).

Sub-packages, lowest first (each imports only those before it): ``crystal`` (geometry,
symmetry), ``io`` (file formats, the run marker, atomic writes), ``stages`` (the per-image
chain), ``merging``, ``resultsdb``; then ``process`` and ``outputs`` (one run in one process),
and ``driver`` (the same over MPI). This face imports nothing, so ``import kernels.io.marker``
stays light.
"""
