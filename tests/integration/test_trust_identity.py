"""Issue 10 item 1: a token belongs to exactly one identity, in every cache backend.

Against the real authorization server: a connection with a wrong secret must fail with
``invalid_client`` even when the same client ID's right-secret token is cached, and two
tenants (``request_params``) never share a token.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_oauthcc.auth.cache.factory import make_token_cache
from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.errors import TokenRequestError
from airflow_provider_oauthcc.auth.provider import TokenProvider
from devserver import DevServer
from tests.support.redis_server import redis_server, redis_url

from .conftest import SECRET

__all__ = ["redis_server", "redis_url"]  # fixtures

BACKENDS = ("memory", "file", "redis")


@pytest.fixture
def provider_for(
    server: DevServer, tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[..., TokenProvider]:
    def build(backend: str, secret: str = SECRET, **extra: Any) -> TokenProvider:
        settings: dict[str, Any] = {"auth_url": server.token_url, "cache_backend": backend}
        if backend == "file":
            settings["cache_dir"] = str(tmp_path / "cache")
        settings.update(extra)
        config = ClientConfig.from_connection(client_id="app", client_secret=secret, extra=settings)
        url = request.getfixturevalue("redis_url") if backend == "redis" else None
        return TokenProvider(config, cache=make_token_cache(config, redis_url=url))

    return build


@pytest.mark.parametrize("backend", BACKENDS)
def test_wrong_secret_fails_although_a_right_secret_token_is_cached(
    server: DevServer, provider_for: Callable[..., TokenProvider], backend: str
) -> None:
    right = provider_for(backend).get_token()
    assert server.stats.token_requests_ok == 1

    with pytest.raises(TokenRequestError) as caught:
        provider_for(backend, secret="not-the-secret-0001").get_token()
    assert caught.value.error == "invalid_client"
    assert server.stats.token_requests_failed == 1
    # The right connection still uses its cached token.
    assert provider_for(backend).get_token() == right
    assert server.stats.token_requests_ok == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_tenants_never_share_a_token(
    server: DevServer, provider_for: Callable[..., TokenProvider], backend: str
) -> None:
    first = provider_for(backend, request_params={"tenant": "acme", "region": "eu"}).get_token()
    second = provider_for(backend, request_params={"tenant": "globex", "region": "eu"}).get_token()
    assert first.access_token != second.access_token
    assert server.stats.token_requests_ok == 2
    # Same parameters in another order: the same identity, served from the cache.
    again = provider_for(backend, request_params={"region": "eu", "tenant": "acme"}).get_token()
    assert again == first
    assert server.stats.token_requests_ok == 2
