from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_oauthcc.auth import discovery, masking
from airflow_provider_oauthcc.auth.cache import PROCESS_CACHE
from airflow_provider_oauthcc.auth.cache.replay import SEEN_ENTRIES
from tests.support.canned_http import CannedServer


@pytest.fixture
def canned() -> Iterator[CannedServer]:
    server = CannedServer()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    PROCESS_CACHE.clear()
    SEEN_ENTRIES.clear()
    discovery.clear_cache()
    masking.LIVE.clear()
    yield
    PROCESS_CACHE.clear()
    SEEN_ENTRIES.clear()
    discovery.clear_cache()
    masking.LIVE.clear()
