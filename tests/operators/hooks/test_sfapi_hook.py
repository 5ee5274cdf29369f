"""The SF API hook: Airflow connection fields become a credential-free API root URL."""

from __future__ import annotations

import json
import logging
import os

import pytest

from facility.ports import free_port
from operators.hooks.sfapi import SfApiHook
from sfapi_client import TransientError

SECRET = "SECRETTOK"


def set_connection(monkeypatch, conn_id: str, **fields) -> None:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "http", **fields})
    )


@pytest.mark.parametrize(
    "fields, base_url",
    [
        ({"host": "api.nersc.gov", "schema": "api/v1.2"}, "https://api.nersc.gov/api/v1.2"),
        (
            {"host": "127.0.0.1", "port": 8001, "schema": "/api/v1.2/"},
            "http://127.0.0.1:8001/api/v1.2",
        ),
        ({"host": "https://me:pw@api.nersc.gov/api/v1.2"}, "https://api.nersc.gov/api/v1.2"),
    ],
)
def test_connection_fields_give_a_url_without_credentials(monkeypatch, fields, base_url):
    set_connection(monkeypatch, "sfapi_url", login="me", password=SECRET, **fields)
    with SfApiHook("sfapi_url").get_client() as client:
        assert client.base_url == base_url
        assert (
            client._auth.header() == f"Bearer {SECRET}"
        )  # the password is the token, not userinfo


def test_unreachable_token_endpoint_names_no_secret(monkeypatch, tmp_path, caplog, emulator):
    creds = emulator.credentials
    creds_file = tmp_path / "creds.json"  # no token_url: the client derives it from the base URL
    creds_file.write_text(json.dumps({"client_id": creds.client_id, "secret": creds.private_key}))
    os.chmod(creds_file, 0o600)
    set_connection(
        monkeypatch,
        "sfapi_down",
        host="127.0.0.1",
        port=free_port(),
        schema="api/v1.2",
        login="me",
        password=SECRET,
        extra={"credentials_file": str(creds_file)},
    )
    caplog.set_level(logging.DEBUG)
    hook = SfApiHook("sfapi_down", retries=1, backoff=(0.01, 1.0, 0.01), timeout=2)
    with hook.get_client() as client, pytest.raises(TransientError) as err:
        client.user()
    assert "token endpoint http://127.0.0.1:" in caplog.text + str(err.value)
    assert SECRET not in caplog.text and SECRET not in str(err.value)
