"""The beamtime dashboard served by the sfxflow Airflow plugin (see ``plugins/sfx_dashboard.py``)."""

from .app import RESULTS_DB_ENV, create_app, results_db_url

__all__ = ["RESULTS_DB_ENV", "create_app", "results_db_url"]
