"""A token endpoint that quotes the assertion it was sent (whole, or its payload or signature)
in its error: the provider's error, sync or async, shows none of it. The assertion is no
configured secret (it is read from a file, or signed per request), so it is scrubbed as sent."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from airflow_provider_oauthcc.auth.aio.client import AsyncTokenClient
from airflow_provider_oauthcc.auth.client import TokenClient
from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.errors import TokenRequestError
from devserver.federation import PlatformIssuer
from devserver.keys import generate_private_key_pem
from tests.support.canned_http import CannedServer


def echoing(canned: CannedServer, assertion: str) -> None:
    payload, signature = assertion.split(".")[1:]
    description = f"rejected {assertion}; payload {payload}; signature {signature}"
    canned.add_json(400, json.dumps({"error": "invalid_client", "error_description": description}))


@pytest.mark.parametrize("transport", ["requests", "aiohttp"])
def test_a_quoted_federated_assertion_is_scrubbed(
    canned: CannedServer, tmp_path: Path, transport: str
) -> None:
    path = tmp_path / "token"
    assertion = PlatformIssuer().write(path, "sa")
    echoing(canned, assertion)
    config = ClientConfig.from_connection(
        client_id="wl",
        client_secret=None,
        extra={"auth_url": f"{canned.url}/token", "client_assertion_file": str(path)},
    )
    with pytest.raises(TokenRequestError) as err:
        if transport == "requests":
            TokenClient(config, max_attempts=1).fetch_token()
        else:
            asyncio.run(AsyncTokenClient(config, max_attempts=1).fetch_token())
    text = f"{err.value} {err.value.error_description}"
    assert "rejected ***" in text
    for part in (assertion, *assertion.split(".")[1:]):
        assert part not in text


def test_a_quoted_grant_assertion_is_scrubbed(canned: CannedServer) -> None:
    pem, _ = generate_private_key_pem("RS256")
    config = ClientConfig.from_connection(
        client_id="sf",
        client_secret=None,
        extra={"auth_url": f"{canned.url}/token", "grant_type": "jwt_bearer", "private_key": pem},
    )
    canned.add_json(400, '{"error": "invalid_grant"}')  # to learn the assertion it sends
    with pytest.raises(TokenRequestError):
        TokenClient(config, max_attempts=1).fetch_token()
    sent = parse_qs(canned.requests[0].body.decode())["assertion"][0]
    # Each request signs a new one; the server quotes whatever it got.
    canned.default.status, canned.default.body = 400, b""
    client = TokenClient(config, max_attempts=1)
    original = client._authenticator.prepare

    def prepare_and_echo(
        uri: str, headers: dict[str, str], body: str
    ) -> tuple[dict[str, str], str]:
        headers, body = original(uri, headers, body)
        echoing(canned, parse_qs(body)["assertion"][0])
        return headers, body

    client._authenticator.prepare = prepare_and_echo  # type: ignore[method-assign]
    with pytest.raises(TokenRequestError) as err:
        client.fetch_token()
    quoted = parse_qs(canned.requests[1].body.decode())["assertion"][0]
    assert quoted != sent
    text = f"{err.value} {err.value.error_description}"
    for part in (quoted, *quoted.split(".")[1:]):
        assert part not in text
