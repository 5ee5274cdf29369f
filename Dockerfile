# Compute-node image for the analysis kernels (MPI, no Airflow): what a job at the HPC center runs,
#   mpiexec -n N python -m kernels process --run ... --out ... --db ...   (or srun under Slurm)
# Versions come from the same constraints.txt the tests run with.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OPENBLAS_NUM_THREADS=1 \
    OMP_NUM_THREADS=1 \
    PYTHONPATH=/opt/sfxflow

WORKDIR /opt/sfxflow
COPY constraints.txt ./
RUN pip install --no-cache-dir -c constraints.txt \
        numpy scipy h5py gemmi mpi4py mpich PyMySQL matplotlib hdf5plugin pycbf EXtra-data EXtra-geom \
    && useradd --create-home --uid 1000 sfx
COPY kernels/ ./kernels/

USER sfx
ENTRYPOINT ["python", "-m", "kernels"]
CMD ["--help"]
