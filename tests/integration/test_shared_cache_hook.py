"""OAuthCCHook and the shared cache: the Redis connection ID, Airflow Stats, the form fields."""

from __future__ import annotations

import json

import pytest
import redis

from airflow_provider_oauthcc.auth import metrics
from airflow_provider_oauthcc.auth.cache.layered import LayeredTokenCache
from airflow_provider_oauthcc.get_provider_info import get_provider_info
from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook, _AirflowStats
from devserver import DevServer
from tests.support.connections import airflow_conn, conn_json
from tests.support.redis_server import RedisServer, redis_server
from tests.support.redis_server import redis_url as redis_url_fixture

from .conftest import SECRET

__all__ = ["redis_server", "redis_url_fixture"]  # fixtures


# How a Redis connection becomes a client: tests/unit/test_redis_connection_client.py


def test_hook_resolves_the_redis_connection_and_shares_tokens(
    server: DevServer, redis_server: RedisServer, redis_url_fixture: str
) -> None:
    redis_conn = json.dumps({"conn_type": "redis", "host": "127.0.0.1", "port": redis_server.port})
    oauth_conn = conn_json(
        server.api_url,
        "app",
        SECRET,
        auth_url=server.token_url,
        cache_backend="redis",
        cache_redis_conn_id="token_redis",
    )
    with airflow_conn("token_redis", redis_conn), airflow_conn("crm_shared", oauth_conn):
        hook = OAuthCCHook(oauth_conn_id="crm_shared")
        assert hook.run("/v1/whoami").json()["client_id"] == "app"
        assert isinstance(hook.token_provider.cache, LayeredTokenCache)
        assert hook.token_provider.cache.name == "redis"

    raw = redis.Redis.from_url(redis_url_fixture)
    (name,) = raw.keys("oauthcc:token:*")
    token = server.stats.api_captures[0].headers["Authorization"].split()[1]
    value = raw.get(name)
    assert value is not None and token.encode() not in value
    assert 3500_000 < raw.pttl(name) <= 3600_000
    raw.close()


def test_hook_with_a_missing_redis_connection_still_works(
    server: DevServer, caplog: pytest.LogCaptureFixture
) -> None:
    oauth_conn = conn_json(
        server.api_url,
        "app",
        SECRET,
        auth_url=server.token_url,
        cache_backend="redis",
        cache_redis_conn_id="no_such_redis",
    )
    with airflow_conn("crm_nored", oauth_conn):
        assert OAuthCCHook(oauth_conn_id="crm_nored").run("/v1/whoami").status_code == 200
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len([w for w in warnings if "Token cache 'redis'" in w]) == 1
    assert "cannot read the Redis connection 'no_such_redis'" in " ".join(warnings)


# The file cache's default folder: tests/integration/test_cache_dir_config.py


def test_hook_sends_metrics_to_airflow_stats(
    server: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.providers.common.compat.sdk import Stats

    counted: list[str] = []
    timed: list[tuple[str, float]] = []
    monkeypatch.setattr(Stats, "incr", lambda name, *a, **k: counted.append(name))
    monkeypatch.setattr(
        Stats, "timing", lambda name, dt, *a, **k: timed.append((name, dt.total_seconds()))
    )
    assert isinstance(metrics._recorder, _AirflowStats)
    oauth_conn = conn_json(server.api_url, "app", SECRET, auth_url=server.token_url)
    with airflow_conn("crm_stats", oauth_conn):
        hook = OAuthCCHook(oauth_conn_id="crm_stats")
        hook.run("/v1/whoami")
        hook.run("/v1/whoami")
    assert counted == [
        "oauthcc.token.cache_miss",
        "oauthcc.token.fetch",
        "oauthcc.token.cache_hit",
    ]
    assert [name for name, _ in timed] == ["oauthcc.token.fetch_latency"]
    assert 0 <= timed[0][1] < 10


def test_form_describes_the_cache_fields() -> None:
    (conn_type,) = get_provider_info()["connection-types"]
    fields = conn_type["conn-fields"]
    assert fields["cache_backend"]["schema"]["enum"] == ["memory", "file", "redis"]
    assert "absolute path" in fields["cache_dir"]["description"]
    assert "redis_default" in fields["cache_redis_conn_id"]["description"]
