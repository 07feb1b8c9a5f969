"""Shared fixtures for tests against the real local authorization server and API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_oauthcc.auth import discovery
from airflow_provider_oauthcc.auth.cache import PROCESS_CACHE
from devserver import DevServer

SECRET = "s3cret-Value-9f8e7d"


@pytest.fixture
def server() -> Iterator[DevServer]:
    srv = DevServer()
    srv.add_client(
        "app",
        secret=SECRET,
        auth_methods=["client_secret_basic", "client_secret_post", "client_secret_jwt"],
        scope="read write",
        default_scope="read",
    )
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    PROCESS_CACHE.clear()
    discovery.clear_cache()
    yield
    PROCESS_CACHE.clear()
    discovery.clear_cache()
