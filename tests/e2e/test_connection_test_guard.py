"""The Test button cannot send a stored secret to a server the tester picks.

Through a real ``airflow api-server``'s test endpoint, as the UI calls it after a user edits a
stored connection: secrets come back masked ("***") and Airflow 3.2+ merges the stored ones
back in when host and port are unchanged. A token endpoint or proxy the tester chose is a
counting server on 127.0.0.1: it must receive nothing unless the tester typed the secret.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from packaging.version import Version

from devserver import DevServer
from tests.support.airflow_api_server import AirflowApiServer, shared_api_server
from tests.support.canned_http import CannedServer, Seen

pytestmark = pytest.mark.e2e

CLIENT_ID = "orders-etl"
SECRET = "stored-Secret-4e1d8b"
MASKED = "***"


def _airflow_version() -> Version:
    import airflow

    return Version(airflow.__version__)


if _airflow_version() < Version("3.0.0"):
    pytest.skip(
        "Airflow 2.x tests the form's values as sent, never merging stored secrets in "
        "(api_connexion test_connection)",
        allow_module_level=True,
    )


# 3.0 and 3.1 test the masked "***" as the secret; 3.2+ merge the stored secrets back in.
MERGES_STORED_SECRETS = _airflow_version() >= Version("3.2.0")


@pytest.fixture(scope="module")
def api_server() -> AirflowApiServer:
    return shared_api_server()


@pytest.fixture(scope="module")
def idp() -> Iterator[DevServer]:
    with DevServer() as server:
        server.add_client(CLIENT_ID, secret=SECRET, scope="read:orders")
        yield server


@pytest.fixture
def testers_server() -> Iterator[CannedServer]:
    server = CannedServer()
    server.default.status = 400
    server.default.body = b'{"error": "invalid_client"}'
    try:
        yield server
    finally:
        server.close()


def _stored(api_server: AirflowApiServer, idp: DevServer, conn_id: str) -> dict[str, Any]:
    """A stored connection to the real authorization server, and the form as the UI shows it."""
    scheme_host, port = idp.api_url.rsplit(":", 1)
    body: dict[str, Any] = {
        "connection_id": conn_id,
        "conn_type": "oauth2_client_credentials",
        "host": scheme_host,
        "port": int(port),
        "login": CLIENT_ID,
        "password": SECRET,
        "extra": json.dumps({"auth_url": idp.token_url, "scope": "read:orders"}),
    }
    created = api_server.api("POST", "/api/v2/connections", json=body)
    assert created.status_code == 201, created.text[:500]
    return {**body, "password": MASKED}


def _test(api_server: AirflowApiServer, form: dict[str, Any]) -> dict[str, Any]:
    response = api_server.api("POST", "/api/v2/connections/test", json=form)
    assert response.status_code == 200, response.text[:500]
    result: dict[str, Any] = response.json()
    return result


def test_an_unchanged_form_tests_with_the_stored_secret(
    api_server: AirflowApiServer, idp: DevServer
) -> None:
    form = _stored(api_server, idp, "guard_unchanged")
    result = _test(api_server, form)
    if not MERGES_STORED_SECRETS:
        assert result["status"] is False and "invalid_client" in result["message"]
    else:
        assert result["status"] is True, result["message"]
        assert f"Token obtained from {idp.token_url}" in result["message"]


@pytest.mark.parametrize("changed", ["auth_url", "proxies"])
def test_a_changed_destination_with_the_stored_secret_sends_nothing(
    api_server: AirflowApiServer, idp: DevServer, testers_server: CannedServer, changed: str
) -> None:
    form = _stored(api_server, idp, f"guard_{changed}")
    extras = json.loads(form["extra"])
    if changed == "auth_url":
        extras["auth_url"] = f"{testers_server.url}/oauth/token"
    else:
        extras["proxies"] = {"http": testers_server.url, "https": testers_server.url}
    result = _test(api_server, {**form, "extra": json.dumps(extras)})

    assert not [seen for seen in testers_server.requests if SECRET in _sent_text(seen)]
    assert result["status"] is False
    assert SECRET not in result["message"]
    if MERGES_STORED_SECRETS:
        assert testers_server.requests == []
        assert "refused" in result["message"] and changed in result["message"]


def test_a_changed_destination_with_a_typed_secret_is_tested(
    api_server: AirflowApiServer, idp: DevServer, testers_server: CannedServer
) -> None:
    """The rule refuses only a reused secret: with the tester's own, the test goes out."""
    form = _stored(api_server, idp, "guard_typed_secret")
    extras = {**json.loads(form["extra"]), "auth_url": f"{testers_server.url}/oauth/token"}
    typed = "testers-own-secret"
    result = _test(api_server, {**form, "password": typed, "extra": json.dumps(extras)})

    assert result["status"] is False and "invalid_client" in result["message"]
    assert len(testers_server.requests) >= 1
    seen = testers_server.requests[0]
    assert SECRET not in _sent_text(seen)


def _sent_text(seen: Seen) -> str:
    """Body and headers as the server received them, a Basic credential decoded."""
    text = seen.body.decode(errors="replace") + json.dumps(seen.headers)
    scheme, _, value = seen.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        text += unquote(base64.b64decode(value).decode(errors="replace"))
    return text
