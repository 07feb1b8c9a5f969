"""Errors a new user meets first name what to change: the token endpoint's field (auth_url, or
token_url when that is the name used), the audience/resource sent; and token_url is another
name for auth_url."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_oauthcc.auth.client import TokenClient
from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.errors import OAuthCCConfigError, TokenRequestError
from tests.support.canned_http import Canned, CannedServer

SECRET = "s3cret-Value-first-use-1618"
CLOSED = "http://127.0.0.1:9/token"  # the discard port: nothing listens there


def config(**extra: Any) -> ClientConfig:
    return ClientConfig.from_connection(client_id="app", client_secret=SECRET, extra=extra)


def unreachable(**extra: Any) -> str:
    with pytest.raises(TokenRequestError) as caught:
        TokenClient(config(**extra), max_attempts=2, backoff=0.01).fetch_token()
    assert SECRET not in str(caught.value)
    return str(caught.value)


@pytest.mark.parametrize("key", ["auth_url", "token_url"])
def test_an_unreachable_token_endpoint_names_the_field_it_came_from(key: str) -> None:
    message = unreachable(**{key: CLOSED})
    assert "cannot reach the token endpoint http://127.0.0.1:9" in message
    assert f"check the connection's extra '{key}' (the token endpoint URL)" in message


def test_the_triggerers_token_client_names_the_field_too() -> None:
    import asyncio

    from airflow_provider_oauthcc.auth.aio.client import AsyncTokenClient

    client = AsyncTokenClient(config(token_url=CLOSED), max_attempts=2, backoff=0.01)
    with pytest.raises(TokenRequestError) as caught:
        asyncio.run(client.fetch_token())
    assert "check the connection's extra 'token_url'" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_an_answered_refusal_names_no_field_to_check(canned: CannedServer) -> None:
    canned.default = Canned(503, "busy")
    with pytest.raises(TokenRequestError) as caught:
        TokenClient(config(auth_url=f"{canned.url}/t"), max_attempts=1).fetch_token()
    assert "check the connection" not in str(caught.value)


def test_invalid_target_echoes_the_resource_and_audience_sent(canned: CannedServer) -> None:
    canned.default = Canned(
        400, '{"error": "invalid_target"}', {"Content-Type": "application/json"}
    )
    cfg = config(auth_url=f"{canned.url}/t", resource="https://api.example.com", audience="crm")
    with pytest.raises(TokenRequestError) as caught:
        TokenClient(cfg, max_attempts=1).fetch_token()
    assert "asked for resource 'https://api.example.com' and audience 'crm'" in str(caught.value)


def test_token_url_is_another_name_for_auth_url() -> None:
    url = "https://idp.example.com/oauth2/token"
    by_token_url = config(token_url=url)
    assert by_token_url.token_url == url and by_token_url.token_url_key == "token_url"
    assert by_token_url.unknown_keys == ()
    assert config(auth_url=url, token_url=url).token_url_key == "auth_url"
    with pytest.raises(OAuthCCConfigError, match="two names for the token endpoint URL"):
        config(auth_url=url, token_url="https://other.example.com/token")
