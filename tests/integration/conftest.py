"""Shared fixtures for tests against the real local authorization server and API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_oauthcc.auth import discovery
from airflow_provider_oauthcc.auth.cache import PROCESS_CACHE
from airflow_provider_oauthcc.auth.cache.replay import SEEN_ENTRIES
from devserver import DevServer
from tests.support.connections import conn_json

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
    SEEN_ENTRIES.clear()
    discovery.clear_cache()
    yield
    PROCESS_CACHE.clear()
    SEEN_ENTRIES.clear()
    discovery.clear_cache()


API_SECRET = "s3cret-Value-api-4242"


@pytest.fixture(scope="module")
def api() -> Iterator[DevServer]:
    """One devserver for a test module, with the client "app" (``API_SECRET``, scope read)."""
    with DevServer() as srv:
        srv.add_client("app", secret=API_SECRET, scope="read")
        yield srv


def api_connection(
    api: DevServer, monkeypatch: pytest.MonkeyPatch, *, records: int, conn_id: str = "crm"
) -> str:
    """The Airflow connection ``conn_id`` to ``api`` (as AIRFLOW_CONN_*), the server reset and
    serving ``records`` records; returns the connection ID."""
    api.reset()
    api.dataset_size = records
    value = conn_json(api.api_url, "app", API_SECRET, auth_url=api.token_url, scope="read")
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)
    return conn_id
