"""TokenProvider over the shared caches: factory, layering, fail-open, metrics, the INFO line."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_oauthcc.auth import metrics
from airflow_provider_oauthcc.auth.cache import PROCESS_CACHE, MemoryTokenCache, TokenCache
from airflow_provider_oauthcc.auth.cache.crypto import TokenCipher
from airflow_provider_oauthcc.auth.cache.factory import make_token_cache
from airflow_provider_oauthcc.auth.cache.fail_open import FailOpenCache
from airflow_provider_oauthcc.auth.cache.file import FileTokenCache
from airflow_provider_oauthcc.auth.cache.layered import LayeredTokenCache
from airflow_provider_oauthcc.auth.cache.redis import RedisTokenCache
from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.errors import TokenRequestError
from airflow_provider_oauthcc.auth.provider import TokenProvider
from tests.support.redis_server import free_port, redis_server, redis_url

from .cache_support import SECRET, CountingClient, config

__all__ = ["redis_server", "redis_url"]  # fixtures


class Recorder:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.timings: list[tuple[str, float]] = []

    def incr(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def timing(self, name: str, seconds: float) -> None:
        self.timings.append((name, seconds))


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    previous = metrics._recorder
    recording = Recorder()
    metrics.set_recorder(recording)
    yield recording
    metrics.set_recorder(previous)


def provider(cfg: ClientConfig, client: CountingClient, **kwargs: object) -> TokenProvider:
    cache = make_token_cache(cfg, **kwargs)
    return TokenProvider(cfg, cache=cache, client=client)


def process(backend: str, where: str, client: CountingClient) -> TokenProvider:
    """A provider over the shared cache with its own memory layer, as another process has."""
    cipher = TokenCipher(SECRET.encode())
    inner: TokenCache = (
        FileTokenCache(Path(where), cipher) if backend == "file" else RedisTokenCache(where, cipher)
    )
    cache = LayeredTokenCache(FailOpenCache(inner), local=MemoryTokenCache())
    return TokenProvider(config(), cache=cache, client=client)


# -- factory ---------------------------------------------------------------------------------


def test_factory_builds_what_the_connection_asks_for(tmp_path: Path, redis_url: str) -> None:
    assert make_token_cache(config()) is PROCESS_CACHE

    file_cache = make_token_cache(config(cache_backend="file", cache_dir=str(tmp_path)))
    assert isinstance(file_cache, LayeredTokenCache) and file_cache.name == "file"
    assert isinstance(file_cache.shared, FailOpenCache)
    assert isinstance(file_cache.shared.inner, FileTokenCache)
    assert file_cache.shared.inner.directory == tmp_path

    redis_cache = make_token_cache(config(cache_backend="redis"), redis_url=redis_url)
    assert isinstance(redis_cache, LayeredTokenCache) and redis_cache.name == "redis"


def test_factory_file_folder_the_connection_then_the_given_default_then_the_user_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def folder(**kwargs: Any) -> Path:
        cache = make_token_cache(**kwargs)
        assert isinstance(cache, LayeredTokenCache) and isinstance(cache.shared, FailOpenCache)
        return Path(cache.shared.inner.directory)

    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))  # not the core's business
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    given = str(tmp_path / "configured")
    conn = str(tmp_path / "conn")
    assert folder(config=config(cache_backend="file")) == tmp_path / "xdg" / "oauthcc-token-cache"
    assert folder(config=config(cache_backend="file"), cache_dir=given) == Path(given)
    assert folder(config=config(cache_backend="file", cache_dir=conn), cache_dir=given) == Path(
        conn
    )


def test_factory_relative_default_folder_falls_back_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        cache = make_token_cache(config(cache_backend="file"), cache_dir="relative/folder")
    assert cache is PROCESS_CACHE
    assert [r.getMessage() for r in caplog.records] == [
        "Token cache 'file' cannot be used (the token cache folder must be an absolute path, "
        "not relative/folder); using the in-process cache"
    ]


def test_redis_without_url_falls_back_with_one_warning(
    caplog: pytest.LogCaptureFixture, recorder: Recorder
) -> None:
    with caplog.at_level(logging.WARNING):
        cache = make_token_cache(config(cache_backend="redis"))
    assert cache is PROCESS_CACHE
    assert [r.getMessage() for r in caplog.records] == [
        "Token cache 'redis' cannot be used (no Redis URL was given); using the in-process cache"
    ]
    assert recorder.counts == {metrics.CACHE_ERROR: 1}


# -- metrics and the INFO line -----------------------------------------------------------------


def test_metrics_hit_miss_fetch_latency(tmp_path: Path, recorder: Recorder) -> None:
    tokens = provider(config(cache_backend="file", cache_dir=str(tmp_path)), CountingClient())
    tokens.get_token()
    assert recorder.counts == {metrics.CACHE_MISS: 1, metrics.FETCH: 1}
    assert [name for name, _ in recorder.timings] == [metrics.FETCH_LATENCY]
    assert 0 <= recorder.timings[0][1] < 5

    tokens.get_token()
    tokens.get_token()
    assert recorder.counts == {metrics.CACHE_MISS: 1, metrics.FETCH: 1, metrics.CACHE_HIT: 2}


def test_failed_fetch_is_counted(recorder: Recorder) -> None:
    class Failing(CountingClient):
        def fetch_token(self):
            raise TokenRequestError("token endpoint answered HTTP 500")

    with pytest.raises(TokenRequestError):
        provider(config(), Failing()).get_token()
    assert recorder.counts == {metrics.CACHE_MISS: 1, metrics.FETCH_ERROR: 1}
    assert recorder.timings == []


def test_broken_recorder_never_fails_a_token_request() -> None:
    class Broken:
        def incr(self, name: str) -> None:
            raise RuntimeError("statsd is down")

        def timing(self, name: str, seconds: float) -> None:
            raise RuntimeError("statsd is down")

    previous = metrics._recorder
    metrics.set_recorder(Broken())
    try:
        assert provider(config(), CountingClient()).get_token().access_token
    finally:
        metrics.set_recorder(previous)


@pytest.mark.parametrize("backend", ["memory", "file", "redis"])
def test_one_info_line_per_real_fetch_without_the_token(
    backend: str, tmp_path: Path, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config(cache_backend=backend, cache_dir=str(tmp_path))
    client = CountingClient()
    with caplog.at_level(logging.INFO, logger="airflow_provider_oauthcc"):
        tokens = provider(cfg, client, redis_url=redis_url)
        token = tokens.get_token()
        tokens.get_token()
        provider(cfg, client, redis_url=redis_url).get_token()
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert lines == [
        f"Fetched an OAuth token for client app from idp.example.com "
        f"(expires in 3599 s, cache {backend})"
    ]
    assert client.calls == 1
    assert token.access_token not in caplog.text and SECRET not in caplog.text


# -- layering and single flight ---------------------------------------------------------------


def test_memory_layer_spares_the_shared_store(tmp_path: Path) -> None:
    cfg = config(cache_backend="file", cache_dir=str(tmp_path))
    client = CountingClient()
    provider(cfg, client).get_token()
    for entry in tmp_path.glob("*.token"):
        entry.unlink()
    provider(cfg, client).get_token()  # same process: served from memory
    assert client.calls == 1


def test_a_new_process_reads_the_shared_store(tmp_path: Path) -> None:
    client = CountingClient()
    first, second = process("file", str(tmp_path), client), process("file", str(tmp_path), client)
    assert first.get_token() == second.get_token()
    assert client.calls == 1


@pytest.mark.parametrize("backend", ["file", "redis"])
def test_threads_on_a_cold_cache_fetch_once(backend: str, tmp_path: Path, redis_url: str) -> None:
    cfg = config(cache_backend=backend, cache_dir=str(tmp_path))
    client = CountingClient(delay=0.05)
    barrier = threading.Barrier(8)
    seen: list[str] = []

    def task() -> None:
        tokens = provider(cfg, client, redis_url=redis_url)
        barrier.wait()
        seen.append(tokens.get_token().access_token)

    threads = [threading.Thread(target=task) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.calls == 1 and len(set(seen)) == 1 and len(seen) == 8


# -- compare before delete across processes ---------------------------------------------------


@pytest.mark.parametrize("backend", ["file", "redis"])
def test_a_late_401_does_not_discard_the_token_another_process_fetched(
    backend: str, tmp_path: Path, redis_url: str
) -> None:
    where = str(tmp_path) if backend == "file" else redis_url
    client = CountingClient()
    a, b = process(backend, where, client), process(backend, where, client)
    t1 = a.get_token()
    assert b.get_token() == t1  # both processes now hold t1

    a.invalidate(t1)  # A got a 401 for t1 ...
    t2 = a.get_token()  # ... and fetched t2 into the shared cache
    b.invalidate(t1)  # B's 401 for t1 arrives late: t2 must survive it
    assert b.get_token() == t2
    assert client.calls == 2


# -- fail open --------------------------------------------------------------------------------


def test_redis_down_fetches_directly_with_one_warning(
    redis_server: object, caplog: pytest.LogCaptureFixture, recorder: Recorder
) -> None:
    url = f"redis://:hunter2-redis-pass@127.0.0.1:{free_port()}/0"
    client = CountingClient(lifetime=0.0)  # never fresh: every call goes to the cache and fetches
    with caplog.at_level(logging.WARNING):
        tokens = provider(config(cache_backend="redis"), client, redis_url=url)
        for _ in range(3):
            assert tokens.get_token().access_token
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("Token cache 'redis' failed to read (ConnectionError:")
    assert warnings[0].endswith("fetching tokens directly for the next 60 s")
    assert "hunter2" not in caplog.text
    assert client.calls == 3
    assert recorder.counts[metrics.CACHE_ERROR] == 1
    assert tokens.cache.name == "redis (unavailable)"


def test_resolving_the_redis_url_fails_open(caplog: pytest.LogCaptureFixture) -> None:
    def missing_connection() -> str:
        raise LookupError("The conn_id `token_redis` isn't defined")

    with caplog.at_level(logging.WARNING):
        token = provider(
            config(cache_backend="redis"), CountingClient(), redis_url=missing_connection
        ).get_token()
    assert token.access_token
    assert "token_redis` isn't defined" in caplog.text


def test_unusable_cache_folder_fetches_directly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    client = CountingClient()
    with caplog.at_level(logging.WARNING):
        token = provider(
            config(cache_backend="file", cache_dir=str(blocker / "c")), client
        ).get_token()
    assert token.access_token and client.calls == 1
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_fetch_errors_pass_through_the_fail_open_lock(tmp_path: Path) -> None:
    class Failing(CountingClient):
        def fetch_token(self):
            raise TokenRequestError("invalid_client")

    cfg = config(cache_backend="file", cache_dir=str(tmp_path))
    with pytest.raises(TokenRequestError, match="invalid_client"):
        provider(cfg, Failing()).get_token()
    # The lock was released: the next attempt is not blocked.
    assert provider(cfg, CountingClient()).get_token().access_token


def test_cache_comes_back_after_the_bypass_window(redis_url: str) -> None:
    cipher = TokenCipher(SECRET.encode())
    broken = FailOpenCache(
        RedisTokenCache(f"redis://127.0.0.1:{free_port()}/0", cipher), retry_after=0.0
    )
    assert broken.get("k") is None and broken.bypassed is False  # window of 0 s: retried
    healthy = FailOpenCache(RedisTokenCache(redis_url, cipher), retry_after=60)
    assert healthy.get("k") is None and not healthy.bypassed
