"""Hook: the Superfacility API of the HPC center, from an Airflow Connection.

Connection (default id ``sfapi_default``): ``host`` is the API root URL
(e.g. ``https://api.nersc.gov/api/v1.2``), or a bare host name with ``port`` and ``schema``
(the path, e.g. ``api/v1.2``); a bare host is reached over https, only loopback hosts over http.
Credentials come from ``extra.credentials_file`` (a 0600 JSON file: client id + private key, or a
token) or, failing that, a static token in ``password``; they never become part of the URL.
Nothing secret ever leaves the hook: triggers get the connection id, never a token.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from sfapi_client import Client

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})


def api_base_url(host: str, port: int | None = None, schema: str | None = None) -> str:
    """The API root URL of a connection's fields, never carrying login or password.

    Parameters
    ----------
    host : str
        A URL with its scheme (kept as given, minus any ``user:password@``) or a bare host name
        (https, or http for 127.0.0.1/localhost: the emulator).
    port : int, optional
        Used with a bare host name.
    schema : str, optional
        Path of the API root (``api/v1.2``), appended to the host's own path.
    """
    if "://" in host:
        parts = urlsplit(host)
        scheme, hostname, port, path = (
            parts.scheme,
            parts.hostname or "",
            parts.port or port,
            parts.path,
        )
    else:
        hostname, path = host.strip("/"), ""
        scheme = "http" if hostname in LOOPBACK_HOSTS else "https"
    if ":" in hostname:  # an IPv6 address
        hostname = f"[{hostname}]"
    netloc = f"{hostname}:{port}" if port else hostname
    segments = [s for s in (path.strip("/"), (schema or "").strip("/")) if s]
    return f"{scheme}://{netloc}" + "".join(f"/{s}" for s in segments)


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
        base_url = api_base_url(conn.host or "", conn.port, conn.schema)
        extra = conn.extra_dejson
        if extra.get("credentials_file"):
            return Client(
                base_url, credentials_file=extra["credentials_file"], **self.client_kwargs
            )
        return Client(base_url, token=conn.password, **self.client_kwargs)
