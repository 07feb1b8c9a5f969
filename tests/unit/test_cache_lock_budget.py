"""A shared cache's lock outlives everything a fetch does while holding it, discovery included."""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_oauthcc.auth import discovery
from airflow_provider_oauthcc.auth.cache.factory import lock_hold_budget, make_token_cache
from airflow_provider_oauthcc.auth.cache.file import FileTokenCache
from airflow_provider_oauthcc.auth.client import TokenClient
from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.http_read import attempt_deadline
from airflow_provider_oauthcc.auth.provider import TokenProvider
from tests.support.canned_http import Canned, CannedServer

SECRET = "lock-budget-secret-77c2"


def _config(**extra: Any) -> ClientConfig:
    return ClientConfig.from_connection(client_id="app", client_secret=SECRET, extra=extra)


@pytest.fixture(autouse=True)
def _fresh_discovery() -> None:
    discovery.clear_cache()


def _shared_lock_timeout(config: ClientConfig) -> float:
    cache = make_token_cache(config, redis_url="redis://127.0.0.1:1/0")
    return float(cache.shared.inner.lock_timeout)  # type: ignore[attr-defined]


def test_the_lock_outlives_discovery_and_the_fetch() -> None:
    issuer = "https://idp.example.com/tenant-a"  # three metadata URLs to try
    config = _config(issuer=issuer, cache_backend="redis", timeout=100)
    discovery_worst = len(discovery.metadata_urls(issuer)) * (attempt_deadline(100) + 100)

    assert len(discovery.metadata_urls(issuer)) == 3
    assert _shared_lock_timeout(config) >= TokenClient(config).max_duration + discovery_worst


def test_a_known_token_endpoint_adds_no_discovery_time() -> None:
    with_endpoint = _config(auth_url="https://idp.example.com/t", cache_backend="redis")
    with_issuer = _config(issuer="https://idp.example.com", cache_backend="redis")
    assert lock_hold_budget(with_issuer) > lock_hold_budget(with_endpoint)
    assert _shared_lock_timeout(with_endpoint) >= TokenClient(with_endpoint).max_duration


def test_discovery_runs_while_the_lock_is_held(tmp_path: Path) -> None:
    """Why the lock must cover it: another process finds the lock taken during discovery."""
    server = CannedServer()
    try:
        issuer = server.url
        config = _config(issuer=issuer, cache_backend="file", cache_dir=str(tmp_path / "cache"))
        other_process = FileTokenCache(tmp_path / "cache", _cipher(config))
        held_when_asked: list[bool] = []

        class Probing(deque[Canned]):
            def popleft(self) -> Canned:
                release = other_process.try_lock(config.cache_key)
                held_when_asked.append(release is None)
                if release is not None:
                    release()
                return super().popleft()

        document = {"issuer": issuer, "token_endpoint": f"{issuer}/token"}
        token = {"access_token": "tok-1", "token_type": "Bearer", "expires_in": 60}
        server.script = Probing([_json(document), _json(token)])
        provider = TokenProvider(
            config, cache=make_token_cache(config), client=TokenClient(config, max_attempts=1)
        )

        assert provider.get_token().access_token == "tok-1"
        assert [seen.path for seen in server.requests] == [
            "/.well-known/openid-configuration",
            "/token",
        ]
        assert held_when_asked == [True, True]
    finally:
        server.close()


def _json(body: dict[str, Any]) -> Canned:
    return Canned(200, json.dumps(body), {"Content-Type": "application/json"})


def _cipher(config: ClientConfig) -> Any:
    from airflow_provider_oauthcc.auth.cache.crypto import TokenCipher, credential_of

    return TokenCipher(credential_of(config))
