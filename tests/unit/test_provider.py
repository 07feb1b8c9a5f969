"""TokenProvider: process cache, single flight, early refresh, riding out an outage."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import pytest

from airflow_provider_oauthcc.auth.cache import PROCESS_CACHE, MemoryTokenCache
from airflow_provider_oauthcc.auth.client import TokenClient
from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.errors import TokenRequestError
from airflow_provider_oauthcc.auth.provider import TokenProvider
from airflow_provider_oauthcc.auth.token import Token
from tests.support.canned_http import Canned, CannedServer


def ok(token: str, expires_in: float = 3600) -> Canned:
    body = json.dumps({"access_token": token, "token_type": "Bearer", "expires_in": expires_in})
    return Canned(200, body, {"Content-Type": "application/json"})


def provider_for(
    server: CannedServer, clock: Callable[[], float] = time.time, **extra: object
) -> TokenProvider:
    config = ClientConfig.from_connection(
        client_id="app", client_secret="pw", extra={"auth_url": f"{server.url}/token", **extra}
    )
    return TokenProvider(config, client=TokenClient(config, max_attempts=1), clock=clock)


def test_instances_share_the_process_cache(canned: CannedServer) -> None:
    canned.add(ok("t1"))
    assert provider_for(canned).get_token().access_token == "t1"
    assert provider_for(canned).get_token().access_token == "t1"
    assert len(canned.requests) == 1
    canned.add(ok("t2"))
    assert provider_for(canned, scope="other").get_token().access_token == "t2"
    assert len(canned.requests) == 2


def test_fifty_threads_on_a_cold_cache_make_one_request(canned: CannedServer) -> None:
    canned.add(Canned(**{**ok("t1").__dict__, "delay": 0.3}))
    start = threading.Barrier(50)
    results: list[str] = []

    def worker() -> None:
        provider = provider_for(canned)
        start.wait()
        results.append(provider.get_token().access_token)

    threads = [threading.Thread(target=worker) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["t1"] * 50
    assert len(canned.requests) == 1


def test_short_lived_token_refreshed_early_not_on_every_call(canned: CannedServer) -> None:
    canned.add(ok("t1", expires_in=1), ok("t2", expires_in=1))
    now = [time.time()]
    provider = provider_for(canned, clock=lambda: now[0])
    first = provider.get_token()
    now[0] = first.refresh_at - 0.01
    for _ in range(20):
        assert provider.get_token() is first
    assert len(canned.requests) == 1
    now[0] = first.refresh_at + 0.01  # renewed before the old one expired
    assert now[0] < first.expires_at
    assert provider.get_token().access_token == "t2"


def test_invalidate_compares_before_delete(canned: CannedServer) -> None:
    canned.add(ok("t1"), ok("t2"))
    provider = provider_for(canned)
    old = provider.get_token()
    provider.invalidate(old)
    new = provider.get_token()
    assert new.access_token == "t2"
    provider.invalidate(old)  # a late 401 on the old token must not drop the new one
    assert provider.get_token() is new
    assert len(canned.requests) == 2


def test_outage_in_the_refresh_window_keeps_the_valid_token(canned: CannedServer) -> None:
    provider = provider_for(canned)
    now = time.time()
    still_valid = Token("old", "Bearer", expires_at=now + 5, obtained_at=now - 95)
    assert not still_valid.is_fresh()
    PROCESS_CACHE.put(provider.config.cache_key, still_valid)
    canned.default = Canned(503, "down")
    assert provider.get_token() is still_valid
    expired = Token("old", "Bearer", expires_at=now - 1, obtained_at=now - 100)
    PROCESS_CACHE.put(provider.config.cache_key, expired)
    with pytest.raises(TokenRequestError):
        provider.get_token()


def test_memory_cache_invalidate_only_matching_token() -> None:
    cache = MemoryTokenCache()
    a = Token("a", "Bearer", expires_at=2e9, obtained_at=1e9)
    b = Token("b", "Bearer", expires_at=2e9, obtained_at=1e9)
    cache.put("k", b)
    assert cache.invalidate("k", a) is False
    assert cache.get("k") is b
    assert cache.invalidate("k", b) is True
    assert cache.get("k") is None


def test_tokens_handed_out_or_rejected_are_scrubbed_from_server_text(
    canned: CannedServer,
) -> None:
    """What a server may echo back in an error: the connection's secret, the token it was
    sent, and the token it rejected (bounded: the newest few)."""
    canned.add(ok("old-token-1234567"), ok("new-token-7654321"))
    provider = provider_for(canned)
    rejected = provider.get_token()
    provider.invalidate(rejected)
    fresh = provider.get_token()
    assert fresh.access_token == "new-token-7654321"
    forms = provider.secret_forms()
    assert {"old-token-1234567", "new-token-7654321"} <= set(forms)
    assert set(provider.config.secret_forms) <= set(forms)
    for n in range(20):
        provider.policy.remember(
            Token(f"later-token-{n:08d}", "Bearer", time.time() + 60, time.time())
        )
    assert "old-token-1234567" not in provider.secret_forms()  # bounded
