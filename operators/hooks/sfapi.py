"""Hook: the Superfacility API of the HPC center, from an Airflow Connection.

Connection (default id ``sfapi_default``): ``host`` is the API root URL
(e.g. ``https://api.nersc.gov/api/v1.2``); credentials come from ``extra.credentials_file`` (a 0600
JSON file: client id + private key, or a token) or, failing that, a static token in ``password``.
Nothing secret ever leaves the hook: triggers get the connection id, never a token.
"""
from __future__ import annotations

from airflow.sdk import BaseHook

from sfapi_client import Client


class SfApiHook(BaseHook):
    conn_name_attr = "sfapi_conn_id"
    default_conn_name = "sfapi_default"
    conn_type = "http"
    hook_name = "Superfacility API"

    def __init__(self, sfapi_conn_id: str = default_conn_name, **client_kwargs):
        super().__init__()
        self.sfapi_conn_id = sfapi_conn_id
        self.client_kwargs = client_kwargs

    def get_client(self) -> Client:
        conn = self.get_connection(self.sfapi_conn_id)
        base_url = conn.host if "://" in (conn.host or "") else conn.get_uri().split("?")[0]
        extra = conn.extra_dejson
        if extra.get("credentials_file"):
            return Client(base_url, credentials_file=extra["credentials_file"], **self.client_kwargs)
        return Client(base_url, token=conn.password, **self.client_kwargs)
