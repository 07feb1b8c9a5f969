"""How the hooks turn an Airflow Redis connection into the token cache's client: through the
Redis provider's RedisHook, one client per process and connection, waits bounded."""

from __future__ import annotations

import sys
from typing import Any

import pytest
import redis

from airflow_provider_oauthcc.auth.cache import TokenCacheError
from airflow_provider_oauthcc.auth.cache.crypto import TokenCipher
from airflow_provider_oauthcc.auth.cache.redis import (
    DEFAULT_SOCKET_TIMEOUT,
    RedisTokenCache,
    close_clients,
)
from airflow_provider_oauthcc.hooks.token_cache import redis_client


class _Conn:
    def __init__(self, **fields: Any) -> None:
        self.conn_id = fields.get("conn_id", "token_redis")
        self.host = fields.get("host")
        self.port = fields.get("port")
        self.login = fields.get("login")
        self.password = fields.get("password")
        self.extra_dejson = fields.get("extra", {})


@pytest.fixture(autouse=True)
def _no_pooled_clients() -> Any:
    close_clients()
    yield
    close_clients()


def settings(client: redis.Redis) -> dict[str, Any]:
    return dict(client.connection_pool.connection_kwargs)


def test_host_port_password_db_and_the_defaults() -> None:
    made = settings(redis_client(_Conn(host="redis.internal", password="pw-123", extra={"db": 3})))
    assert (made["host"], made["port"], made["password"], made["db"]) == (
        "redis.internal",
        6379,
        "pw-123",
        3,
    )
    user = settings(redis_client(_Conn(host="::1", login="svc", password="p@ss/word")))
    assert (user["host"], user["username"], user["password"]) == ("::1", "svc", "p@ss/word")
    bare = settings(redis_client(_Conn()))
    assert (bare["host"], bare["port"]) == ("localhost", 6379)


def test_ssl_extras_reach_the_client() -> None:
    extra = {
        "ssl": True,
        "ssl_ca_certs": "/etc/ssl/redis-ca.pem",
        "ssl_cert_reqs": "required",
        "ssl_certfile": "/etc/ssl/client.pem",
        "ssl_keyfile": "/etc/ssl/client.key",
    }
    client = redis_client(_Conn(host="r", port=6380, extra=extra))
    assert client.connection_pool.connection_class is redis.SSLConnection
    made = settings(client)
    for key in ("ssl_ca_certs", "ssl_cert_reqs", "ssl_certfile", "ssl_keyfile"):
        assert made[key] == extra[key]


@pytest.mark.parametrize(("ssl", "tls"), [("false", False), ("true", True), ("0", False)])
def test_ssl_given_as_text_as_a_uri_gives_it(ssl: str, tls: bool) -> None:
    client = redis_client(_Conn(host="r", extra={"ssl": ssl}))
    assert (client.connection_pool.connection_class is redis.SSLConnection) is tls


def test_one_client_per_connection_and_process() -> None:
    first = redis_client(_Conn(host="r", password="one-secret"))
    assert redis_client(_Conn(host="r", password="one-secret", conn_id="other")) is first
    assert redis_client(_Conn(host="r", password="two-secret")) is not first
    assert redis_client(_Conn(host="r", password="one-secret", extra={"db": 1})) is not first


def test_a_url_in_the_host_field_is_used_as_it_is() -> None:
    made = settings(redis_client(_Conn(host="rediss://:pw-9@elsewhere:7000/2")))
    assert (made["host"], made["port"], made["db"], made["password"]) == (
        "elsewhere",
        7000,
        2,
        "pw-9",
    )


def test_the_cache_bounds_the_waits_of_a_client_made_elsewhere() -> None:
    client = redis_client(_Conn(host="r"))
    # RedisHook sets none: redis-py 5 has no default (6+ has 5 s); a timeout set is kept.
    client.connection_pool.connection_kwargs.update(socket_timeout=None, socket_connect_timeout=2.5)
    cache = RedisTokenCache(None, TokenCipher(b"k" * 32), client=lambda: client)
    assert cache._client() is client
    made = settings(client)
    assert (made["socket_timeout"], made["socket_connect_timeout"]) == (
        DEFAULT_SOCKET_TIMEOUT,
        2.5,
    )


def test_a_url_or_a_client_function_not_both() -> None:
    cipher = TokenCipher(b"k" * 32)
    with pytest.raises(ValueError, match="either"):
        RedisTokenCache(None, cipher)
    with pytest.raises(ValueError, match="either"):
        RedisTokenCache("redis://r/0", cipher, client=lambda: None)


def test_without_the_redis_provider_the_message_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "airflow.providers.redis.hooks.redis", None)
    with pytest.raises(TokenCacheError, match=r"airflow-provider-oauthcc\[redis\]"):
        redis_client(_Conn(host="r"))
