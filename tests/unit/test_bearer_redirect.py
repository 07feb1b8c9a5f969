"""BearerAuth on redirects: the token stays with the API, whatever the other host answers."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests

from airflow_provider_oauthcc.auth.client import TokenClient
from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.provider import TokenProvider
from airflow_provider_oauthcc.auth.requests_auth import BearerAuth
from tests.support.canned_http import Canned, CannedServer

TOKEN = "tok-abc-123"


@pytest.fixture
def api() -> Iterator[CannedServer]:
    server = CannedServer()
    yield server
    server.close()


@pytest.fixture
def other() -> Iterator[CannedServer]:
    server = CannedServer()
    yield server
    server.close()


def provider_for(idp: CannedServer) -> TokenProvider:
    body = json.dumps({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600})
    idp.add(Canned(200, body, {"Content-Type": "application/json"}))
    config = ClientConfig.from_connection(
        client_id="app", client_secret="pw", extra={"auth_url": f"{idp.url}/token"}
    )
    return TokenProvider(config, client=TokenClient(config, max_attempts=1))


@pytest.mark.parametrize("api_base_url_known", [True, False])
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_401_from_the_redirect_target_gets_no_token_and_no_replay(
    canned: CannedServer,
    api: CannedServer,
    other: CannedServer,
    status: int,
    api_base_url_known: bool,
) -> None:
    provider = provider_for(canned)
    elsewhere = other.url.replace("127.0.0.1", "localhost")
    api.add(Canned(status, "", {"Location": f"{elsewhere}/steal"}))
    other.default = Canned(401, "", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    session = requests.Session()
    session.auth = BearerAuth(provider, api.url if api_base_url_known else None)

    response = session.get(f"{api.url}/v1/items", timeout=5)

    assert response.status_code == 401 and response.url == f"{elsewhere}/steal"
    assert api.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert len(other.requests) == 1  # no replay
    assert "Authorization" not in other.requests[0].headers
    assert all(TOKEN.encode() not in r.body for r in other.requests)
    # The good token was neither dropped nor replaced because of the other host's 401.
    assert len(canned.requests) == 1 and provider.get_token().access_token == TOKEN
