"""sfxflow's Airflow provider: hooks, triggers, sensors, one operator module per step, and the
DAGs' decisions as plain functions in :mod:`operators.pipeline`.

=====================  ==========================================================
``hooks/``             the Superfacility API and XRootD, from Airflow connections
``triggers/``          deferred waits: facility usable, job finished, run concluded
``sensors/``           the facility check (deferrable)
``analysis_job.py``    the process and merge steps: one batch job, exactly once
``transfer.py``        the transfer step: a run to the center, verified, resumable
``download.py``        the download step: results back into the experiment folder
``settings.py``        the beamtime settings from the Airflow Variable
``run_events.py``      the run-concluded marker contract
``pipeline/``          plain functions (no Airflow): settings, requests, scripts
=====================  ==========================================================
"""
