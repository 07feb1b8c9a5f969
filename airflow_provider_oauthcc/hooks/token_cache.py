"""The token cache a hook uses, set up from Airflow: the file cache's folder from Airflow's
configuration, the Redis cache's client from an Airflow Redis connection through the Redis
provider's ``RedisHook`` (so a Redis connection means the same here as anywhere in Airflow).

The caches themselves (:mod:`airflow_provider_oauthcc.auth.cache`) do not import Airflow.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from typing import Any

from airflow_provider_oauthcc.auth import masking
from airflow_provider_oauthcc.auth.cache import TokenCache
from airflow_provider_oauthcc.auth.cache.factory import make_token_cache
from airflow_provider_oauthcc.auth.config import ClientConfig, as_flag


def hook_token_cache(config: ClientConfig, redis: Callable[[], Any] | None) -> TokenCache:
    """The cache for ``config``; ``redis`` returns the Redis client, called on first use."""
    return make_token_cache(config, redis_client=redis, cache_dir=configured_cache_dir(config))


CACHE_CONFIG_SECTION = "oauthcc"
CACHE_DIR_OPTION = "token_cache_dir"


def configured_cache_dir(config: ClientConfig) -> str | None:
    """The file cache's folder when the connection names none: Airflow's
    ``[oauthcc] token_cache_dir`` (``AIRFLOW__OAUTHCC__TOKEN_CACHE_DIR``), by default
    ``{AIRFLOW_HOME}/oauthcc-token-cache`` with Airflow's own home (``~/airflow`` unless set)."""
    if config.cache_backend != "file" or config.cache_dir:
        return None
    from airflow.configuration import AIRFLOW_HOME, conf

    # Airflow 3.1 loads providers' defaults only where something asked for them: the same
    # default here.
    default = os.path.join(AIRFLOW_HOME, "oauthcc-token-cache")
    value = conf.get(CACHE_CONFIG_SECTION, CACHE_DIR_OPTION, fallback=None) or default
    return os.path.expanduser(value)


def redis_client(connection: Any) -> Any:
    """The redis-py client of an Airflow Redis connection, made by the Redis provider's
    ``RedisHook`` (host, port, login, password, extras ``db``, ``ssl``, ``ssl_cert_reqs``,
    ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_check_hostname`` ... as that
    version of the provider reads them), one per process for the same connection.

    As before: no host means localhost, no port 6379, ``"false"`` from a URI is false, and a
    redis:// or rediss:// URL in the host field is used as it is.
    """
    from airflow_provider_oauthcc.auth.cache.redis import client_for_url, shared_client

    masking.mask(connection.password)
    host = connection.host or ""
    if "://" in host:
        return client_for_url(host)
    view = _RedisConnection(connection)
    fields = [view.host, view.port, view.login, view.password, view.extra_dejson]
    name = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()
    return shared_client(f"airflow-connection:{name}", lambda: _redis_hook_client(view))


class _RedisConnection:
    """The fields of an Airflow Redis connection that ``RedisHook.get_conn`` reads."""

    _FLAGS = ("ssl", "ssl_check_hostname", "cluster")

    def __init__(self, connection: Any) -> None:
        self.conn_id = getattr(connection, "conn_id", None)
        self.host = connection.host or "localhost"
        self.port = connection.port or 6379
        self.login = connection.login
        self.password = connection.password
        extra = dict(connection.extra_dejson or {})
        for key in self._FLAGS:
            if isinstance(extra.get(key), str):
                extra[key] = as_flag(key, extra[key])  # "false" in a URI is false
        self.extra_dejson = extra


def _redis_hook_client(connection: _RedisConnection) -> Any:
    try:
        from airflow.providers.redis.hooks.redis import RedisHook
    except ImportError:
        from airflow_provider_oauthcc.auth.cache import TokenCacheError

        raise TokenCacheError(
            "the redis cache needs the Redis provider: "
            "pip install 'airflow-provider-oauthcc[redis]'"
        ) from None

    class _ReadHook(RedisHook):
        # The connection is already read (asynchronously in the triggerer): no second lookup.
        def get_connection(self, conn_id: str) -> Any:  # type: ignore[override]
            return connection

    hook: Any = _ReadHook(redis_conn_id=connection.conn_id or RedisHook.default_conn_name)
    return hook.get_conn()
