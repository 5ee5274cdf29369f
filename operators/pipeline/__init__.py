"""What the DAGs decide, as plain functions: no Airflow class and no Airflow import.

Beamtime settings (:mod:`.beamtime`), run requests and reprocess selection (:mod:`.reprocess`),
the per-run request, its job scripts and what is published (:mod:`.run`), dataset merge requests
(:mod:`.dataset_merge`), job script text and naming (:mod:`.job_script`). Testable without Airflow.
"""
