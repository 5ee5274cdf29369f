"""Authentication: private_key_jwt client credentials, token expiry and refresh, static tokens."""

from __future__ import annotations

import logging
import os
import time
import uuid

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from facility.ports import free_port
from facility.sfapi.config import ConfigError, read_private_file
from facility.sfapi.testing import running_emulator
from sfapi_client import AuthError, Client, TransientError

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def assertion(client_id: str, key_pem: str, audience: str, **claims) -> str:
    now = int(time.time())
    body = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
        **claims,
    }
    return jwt.encode(body, key_pem, algorithm="RS256")


def token_request(creds, client_assertion: str) -> requests.Response:
    return requests.post(
        creds.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": creds.client_id,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion,
        },
        timeout=10,
    )


def other_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_client_credentials_and_static_token_both_work(emu):
    creds = emu.all_credentials["alice"]
    with Client(
        emu.base_url,
        client_id=creds.client_id,
        private_key=creds.private_key,
        token_url=creds.token_url,
    ) as client:
        assert client.user() == "alice"
    with Client(emu.base_url, token=creds.static_token) as client:
        assert client.user() == "alice"


def test_bad_signature_is_refused(emu):
    creds = emu.all_credentials["alice"]
    r = token_request(creds, assertion(creds.client_id, other_key(), creds.token_url))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert "Signature verification failed" in r.json()["error_description"]
    with pytest.raises(AuthError, match="refused"):
        Client(
            emu.base_url,
            client_id=creds.client_id,
            private_key=other_key(),
            token_url=creds.token_url,
        ).user()


def test_unknown_client_wrong_audience_and_replay_are_refused(emu):
    creds = emu.all_credentials["alice"]
    with pytest.raises(AuthError, match="unknown client"):
        Client(
            emu.base_url,
            client_id="nosuchclient1",
            private_key=creds.private_key,
            token_url=creds.token_url,
        ).user()
    r = token_request(
        creds, assertion(creds.client_id, creds.private_key, "https://elsewhere/token")
    )
    assert r.status_code == 401 and "audience" in r.json()["error_description"].lower()
    signed = assertion(creds.client_id, creds.private_key, creds.token_url)
    assert token_request(creds, signed).status_code == 200
    replay = token_request(creds, signed)
    assert replay.status_code == 401 and "replayed" in replay.json()["error_description"]


def test_missing_or_garbage_token_gets_401(emu):
    r = requests.get(emu.base_url + "/account/", timeout=10)
    assert r.status_code == 401 and r.json() == {"detail": "Not authenticated"}
    r = requests.get(
        emu.base_url + "/compute/jobs/perlmutter",
        headers={"Authorization": "Bearer garbage"},
        timeout=10,
    )
    assert r.status_code == 401 and r.json() == {"detail": "Invalid token"}
    with pytest.raises(AuthError, match="401"):
        Client(emu.base_url, token="garbage").user()


def test_expired_token_is_refused_and_client_refreshes(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with running_emulator(tmp_path, in_process=True, token_lifetime=1) as emu:
        creds = emu.credentials
        token = token_request(
            creds, assertion(creds.client_id, creds.private_key, creds.token_url)
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert requests.get(emu.base_url + "/account/", headers=headers, timeout=10).ok
        time.sleep(1.2)
        r = requests.get(emu.base_url + "/account/", headers=headers, timeout=10)
        assert r.status_code == 401 and r.json() == {"detail": "Token expired"}

        client = Client(emu.base_url, credentials_file=creds.credentials_file)
        assert client.user() == "sfxflow"
        first = client._auth._token
        client._auth._refresh_at = float("inf")  # keep using it past expiry: the 401 path
        time.sleep(1.2)
        client._user = None
        assert client.user() == "sfxflow"
        assert client._auth._token != first
        assert token not in caplog.text and first not in caplog.text


def test_secret_files_must_be_private(tmp_path, emu):
    creds_file = tmp_path / "creds.json"
    creds_file.write_text(emu.credentials.credentials_file.read_text())
    os.chmod(creds_file, 0o644)
    with pytest.raises(AuthError, match="chmod 600"):
        Client(emu.base_url, credentials_file=creds_file)
    os.chmod(creds_file, 0o600)
    assert Client(emu.base_url, credentials_file=creds_file).user() == "alice"
    token_file = tmp_path / "static_token"
    token_file.write_text("x")
    os.chmod(token_file, 0o640)
    with pytest.raises(ConfigError, match="readable by others"):
        read_private_file(token_file)


def test_credentials_in_urls_are_dropped_and_never_reported(emu, caplog):
    creds = emu.all_credentials["alice"]
    caplog.set_level(logging.DEBUG)
    dead = f"http://me:SECRETTOK@127.0.0.1:{free_port()}"
    with Client(
        dead + "/api/v1.2",
        client_id=creds.client_id,
        private_key=creds.private_key,
        retries=1,
        backoff=(0.01, 1.0, 0.01),
        timeout=2,
    ) as client:
        assert client.base_url == dead.replace("me:SECRETTOK@", "") + "/api/v1.2"
        with pytest.raises(TransientError) as err:
            client.user()
    assert "unreachable" in str(err.value)
    assert "SECRETTOK" not in str(err.value) and "SECRETTOK" not in caplog.text
    live = emu.base_url.replace("://", "://me:SECRETTOK@")
    with Client(
        live,
        client_id=creds.client_id,
        private_key=creds.private_key,
        token_url=creds.token_url.replace("://", "://me:SECRETTOK@"),
    ) as client:
        assert client.user() == "alice"  # our bearer token, not Basic auth from the URL
