"""Airflow's REST API (``/api/v2``) called with the acting user's own JWT, never a service account.

Airflow checks that user's rights again on every call, and records them as the author (e.g. the
DAG run's ``triggering_user_name``). Its refusals come back as :class:`AirflowRefused` with
Airflow's status code and reason.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import requests

TIMEOUT_S = 30.0


class AirflowRefused(Exception):
    """Airflow's REST API answered with an error: ``status`` and its ``detail``."""

    def __init__(self, status: int, detail: str):
        super().__init__(f"Airflow answered {status}: {detail}")
        self.status = status
        self.detail = detail


def default_base_url() -> str:
    """The api-server's own public URL (``[api] base_url``), which serves ``/api/v2``."""
    from airflow.configuration import conf

    return conf.get("api", "base_url", fallback="http://127.0.0.1:8080").rstrip("/")


class AirflowREST:
    """Calls of ``/api/v2`` at ``base_url`` authenticated as the user owning ``jwt``."""

    def __init__(self, base_url: str, jwt: str):
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {jwt}"}

    def _call(self, method: str, path: str, ok=(200,), **kwargs) -> requests.Response:
        response = requests.request(
            method,
            f"{self.base_url}/api/v2{path}",
            headers=self._headers,
            timeout=TIMEOUT_S,
            **kwargs,
        )
        if response.status_code not in ok:
            try:
                detail = json.dumps(response.json().get("detail"))
            except ValueError:
                detail = response.text[:300]
            raise AirflowRefused(response.status_code, f"{method} {path}: {detail}")
        return response

    def variable(self, key: str) -> str | None:
        """The value of Variable ``key`` in Airflow's metadata DB, or None when it is not set."""
        response = self._call("GET", f"/variables/{quote(key, safe='')}", ok=(200, 404))
        return response.json()["value"] if response.status_code == 200 else None

    def set_variable(self, key: str, value: str, exists: bool) -> None:
        """Create or replace Variable ``key``."""
        body = {"key": key, "value": value}
        if exists:
            self._call("PATCH", f"/variables/{quote(key, safe='')}", json=body)
        else:
            self._call("POST", "/variables", ok=(201,), json=body)

    def trigger(self, dag_id: str, conf: dict, note: str) -> dict:
        """A new manual run of ``dag_id`` with ``conf``; Airflow's answer (``dag_run_id``, ...)."""
        body = {"logical_date": None, "conf": conf, "note": note}
        return self._call("POST", f"/dags/{quote(dag_id, safe='')}/dagRuns", json=body).json()

    def asset_id(self, uri: str) -> int | None:
        """Id of the asset with exactly this URI, or None when no DAG declares it."""
        found = self._call("GET", "/assets", params={"uri_pattern": uri, "limit": 100}).json()
        return next((a["id"] for a in found["assets"] if a["uri"] == uri), None)

    def asset_event(self, asset_id: int, extra: dict) -> None:
        """Record an update of the asset, as a task's outlet would (its consumers follow)."""
        self._call("POST", "/assets/events", json={"asset_id": asset_id, "extra": extra})
