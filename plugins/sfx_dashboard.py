"""Airflow plugin: the beamtime dashboard at ``/sfxflow/``, linked as "Beamtime" in the UI's navigation.

The dashboard reads the results DB named by ``$SFXFLOW_RESULTS_DB`` (see
:mod:`plugins.sfx_dashboard_app`); the implementation lives in that package, which
``.airflowignore`` keeps Airflow's plugin loader from importing file by file.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from plugins.sfx_dashboard_app import create_app

URL_PREFIX = "/sfxflow"


class SfxDashboardPlugin(AirflowPlugin):
    """Mounts the dashboard app in the api-server and adds it to the navigation."""

    name = "sfxflow_dashboard"
    fastapi_apps = [
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "sfxflow beamtime dashboard"}
    ]
    external_views = [
        {
            "name": "Beamtime",
            "href": f"{URL_PREFIX}/",
            "url_route": "beamtime",
            "destination": "nav",
            "nav_top_level": True,  # a button of its own in the side bar, not buried under "Browse"
        }
    ]
