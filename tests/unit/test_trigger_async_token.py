"""The triggerer's token path: AsyncTokenClient against canned answers, AsyncTokenProvider's
single flight over the memory and file caches."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from airflow_provider_oauthcc.auth import masking
from airflow_provider_oauthcc.auth.aio.client import AsyncTokenClient
from airflow_provider_oauthcc.auth.aio.provider import AsyncTokenProvider
from airflow_provider_oauthcc.auth.cache import MemoryTokenCache
from airflow_provider_oauthcc.auth.cache.factory import make_token_cache
from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.errors import TokenRequestError
from airflow_provider_oauthcc.auth.token import Token
from tests.support.canned_http import Canned, CannedServer

SECRET = "s3cret-Value-async-77"
OK = '{"access_token": "tok-1", "token_type": "Bearer", "expires_in": 3600, "scope": "read"}'


def config_for(url: str, **extra: object) -> ClientConfig:
    return ClientConfig.from_connection(
        client_id="app", client_secret=SECRET, extra={"auth_url": f"{url}/oauth/token", **extra}
    )


def client_for(server: CannedServer, **extra: object) -> AsyncTokenClient:
    return AsyncTokenClient(config_for(server.url, **extra), backoff=0.01, max_backoff=0.05)


def test_same_request_as_the_sync_client(canned: CannedServer) -> None:
    canned.add_json(200, OK)
    token = asyncio.run(client_for(canned, scope="read", audience="https://api").fetch_token())
    assert token.access_token == "tok-1" and token.scope == "read"
    seen = canned.requests[0]
    assert seen.method == "POST" and seen.path == "/oauth/token"
    assert (
        seen.headers["Authorization"]
        == "Basic " + base64.b64encode(f"app:{SECRET}".encode()).decode()
    )
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(seen.body.decode()) == {
        "grant_type": ["client_credentials"],
        "scope": ["read"],
        "audience": ["https://api"],
    }


def test_client_secret_post_puts_the_credentials_in_the_body(canned: CannedServer) -> None:
    canned.add_json(200, OK)
    asyncio.run(client_for(canned, auth_method="client_secret_post").fetch_token())
    form = parse_qs(canned.requests[0].body.decode())
    assert form["client_id"] == ["app"] and form["client_secret"] == [SECRET]
    assert "Authorization" not in canned.requests[0].headers


def test_retries_503_then_succeeds(canned: CannedServer) -> None:
    canned.add_json(503, '{"error": "temporarily_unavailable"}')
    canned.add_json(429, '{"error": "slow_down"}', **{"Retry-After": "0"})
    canned.add_json(200, OK)
    assert asyncio.run(client_for(canned).fetch_token()).access_token == "tok-1"
    assert len(canned.requests) == 3


def test_gives_up_after_max_attempts(canned: CannedServer) -> None:
    canned.default = Canned(503, '{"error": "temporarily_unavailable"}')
    with pytest.raises(TokenRequestError, match=r"gave up after 4 attempts") as caught:
        asyncio.run(client_for(canned).fetch_token())
    assert caught.value.status == 503 and caught.value.error == "temporarily_unavailable"


def test_refusal_carries_the_oauth_error_and_no_secret(canned: CannedServer) -> None:
    canned.add_json(
        401, f'{{"error": "invalid_client", "error_description": "bad secret {SECRET}"}}'
    )
    with pytest.raises(TokenRequestError) as caught:
        asyncio.run(client_for(canned).fetch_token())
    assert caught.value.error == "invalid_client" and caught.value.status == 401
    assert SECRET not in str(caught.value) and SECRET not in (caught.value.error_description or "")
    assert len(canned.requests) == 1  # a refusal is not retried


def test_redirect_is_not_followed(canned: CannedServer) -> None:
    canned.add(Canned(307, b"", {"Location": "https://elsewhere.example.com/token"}))
    with pytest.raises(TokenRequestError, match=r"redirected .* the credentials were not sent"):
        asyncio.run(client_for(canned).fetch_token())


def test_unreachable_token_endpoint() -> None:
    config = config_for("http://127.0.0.1:9")
    client = AsyncTokenClient(config, max_attempts=2, backoff=0.01)
    with pytest.raises(
        TokenRequestError, match=r"cannot reach the token endpoint http://127.0.0.1:9 .*2 attempts"
    ):
        asyncio.run(client.fetch_token())


class Clock:
    """Epoch seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class CountingClient:
    """Stands in for AsyncTokenClient: each fetch takes ``latency`` s and is counted; its
    tokens are stamped by ``clock`` (real time unless given)."""

    max_duration = 60.0
    known_token_url = None

    def __init__(
        self, lifetime: float = 3600, latency: float = 0.05, clock: Clock | None = None
    ) -> None:
        self.fetches = 0
        self.lifetime = lifetime
        self.latency = latency
        self.clock = clock or time.time
        self.fail = False

    async def fetch_token(self) -> Token:
        self.fetches += 1
        await asyncio.sleep(self.latency)
        if self.fail:
            raise TokenRequestError("token endpoint answered HTTP 503", status=503)
        now = self.clock()
        return Token(f"tok-{self.fetches}", "Bearer", now + self.lifetime, now)


def provider_with(
    client: CountingClient, cache: object | None = None, **extra: object
) -> AsyncTokenProvider:
    config = config_for("https://idp.example.com", **extra)
    return AsyncTokenProvider(
        config,
        cache=cache if cache is not None else MemoryTokenCache(),  # type: ignore[arg-type]
        client=client,  # type: ignore[arg-type]
        clock=client.clock,
    )


def test_concurrent_misses_in_one_loop_make_one_request() -> None:
    client = CountingClient()
    cache = MemoryTokenCache()

    async def main() -> set[str]:
        providers = [provider_with(client, cache) for _ in range(100)]
        tokens = await asyncio.gather(*(p.get_token() for p in providers))
        return {t.access_token for t in tokens}

    assert asyncio.run(main()) == {"tok-1"}
    assert client.fetches == 1


def test_a_token_due_for_refresh_is_replaced() -> None:
    clock = Clock()
    client = CountingClient(lifetime=60, latency=0, clock=clock)  # refreshed 6 s before expiry
    provider = provider_with(client)

    async def main() -> list[str]:
        first = await provider.get_token()
        clock.now += 53.9
        still = await provider.get_token()
        clock.now += 0.2  # 54.1 s: inside the early-refresh window
        second = await provider.get_token()
        return [first.access_token, still.access_token, second.access_token]

    assert asyncio.run(main()) == ["tok-1", "tok-1", "tok-2"]


def test_refresh_failure_rides_on_the_still_valid_token() -> None:
    clock = Clock()
    client = CountingClient(lifetime=60, latency=0, clock=clock)
    provider = provider_with(client)

    async def main() -> list[str]:
        await provider.get_token()
        clock.now += 55  # inside the early-refresh window (6 s), not expired
        client.fail = True
        riding = (await provider.get_token()).access_token
        clock.now += 5  # expired now: nothing to ride on
        try:
            await provider.get_token()
        except TokenRequestError:
            return [riding, "failed"]
        return [riding, "not failed"]

    assert asyncio.run(main()) == ["tok-1", "failed"]
    assert client.fetches == 3


def test_fetch_failure_without_a_token_raises() -> None:
    client = CountingClient()
    client.fail = True
    with pytest.raises(TokenRequestError, match="503"):
        asyncio.run(provider_with(client).get_token())


def test_invalidate_forgets_the_rejected_token() -> None:
    client = CountingClient()
    provider = provider_with(client)

    async def main() -> list[str]:
        first = await provider.get_token()
        await provider.invalidate(first)
        return [first.access_token, (await provider.get_token()).access_token]

    assert asyncio.run(main()) == ["tok-1", "tok-2"]


def test_file_cache_is_shared_across_processes_loops_and_the_sync_design(tmp_path: Path) -> None:
    """Two providers with their own process memory (as two triggerers) share the file cache."""
    client = CountingClient()
    extra = {"cache_backend": "file", "cache_dir": str(tmp_path)}

    def provider() -> AsyncTokenProvider:
        config = config_for("https://idp.example.com", **extra)
        cache = make_token_cache(config)
        cache.local = MemoryTokenCache()  # type: ignore[attr-defined]  # a fresh "process"
        return AsyncTokenProvider(config, cache=cache, client=client)  # type: ignore[arg-type]

    first = asyncio.run(provider().get_token())
    second = asyncio.run(provider().get_token())
    assert first.access_token == second.access_token == "tok-1"
    assert client.fetches == 1
    assert [p.name for p in tmp_path.iterdir()]  # the token is on disk (encrypted)
    assert not any(b"tok-1" in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())


def test_every_token_handed_out_on_the_loop_is_held_as_a_live_secret() -> None:
    """On the event loop a token, on a miss and on a hit, is held in the bounded live set
    (masked in the HTTP clients' log lines until it expires), never handed to Airflow's
    masker, whose cost grows with every value it keeps (docs/security.md)."""
    seen_async: list[str] = []
    seen_sync: list[str] = []

    async def amask(value: str) -> None:
        seen_async.append(value)

    client = CountingClient(latency=0)
    cache = MemoryTokenCache()

    async def main() -> list[str]:
        fetched = await provider_with(client, cache).get_token()
        masking.set_masker(seen_sync.append, amask)  # forgets what it held: a hit must hold too
        assert "tok-1" not in masking.LIVE
        hit = await provider_with(client, cache).get_token()
        return [fetched.access_token, hit.access_token]

    masking.set_masker(seen_sync.append, amask)
    try:
        assert asyncio.run(main()) == ["tok-1", "tok-1"]
        assert "tok-1" in masking.LIVE
    finally:
        masking.set_masker(None)
    assert client.fetches == 1
    assert seen_async == [] and seen_sync == []
