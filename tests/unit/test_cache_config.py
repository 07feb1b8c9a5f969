"""The cache extras of the connection."""

from __future__ import annotations

import os

import pytest

from airflow_provider_oauthcc.auth.errors import OAuthCCConfigError

from .cache_support import config


def test_defaults() -> None:
    cfg = config()
    assert (cfg.cache_backend, cfg.cache_dir, cfg.cache_redis_conn_id) == (
        "memory",
        None,
        "redis_default",
    )
    assert cfg.unknown_keys == ()


def test_shared_cache_extras() -> None:
    cfg = config(cache_backend="redis", cache_redis_conn_id=" celery_redis ", cache_dir="~/tc")
    assert cfg.cache_backend == "redis"
    assert cfg.cache_redis_conn_id == "celery_redis"
    assert cfg.cache_dir == os.path.expanduser("~/tc")
    assert cfg.unknown_keys == ()
    # Empty form fields mean "not set".
    assert config(cache_dir="", cache_redis_conn_id=None).cache_redis_conn_id == "redis_default"


@pytest.mark.parametrize(
    ("extra", "field", "fragment"),
    [
        ({"cache_backend": "memcached"}, "cache_backend", "memory, file, redis"),
        ({"cache_dir": "relative/dir"}, "cache_dir", "absolute path"),
        ({"cache_dir": 5}, "cache_dir", "must be a string"),
        ({"cache_redis_conn_id": ["a"]}, "cache_redis_conn_id", "must be a string"),
    ],
)
def test_misconfigured_cache_extras(extra: dict[str, object], field: str, fragment: str) -> None:
    with pytest.raises(OAuthCCConfigError) as info:
        config(**extra)
    assert info.value.field == field and fragment in str(info.value)
