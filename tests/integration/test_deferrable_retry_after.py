"""The deferrable path honours a server's Retry-After, bounded by ``retry_max_wait``, as the
sync operator does (tests/integration/test_operator_robustness.py): the trigger against the
real local API, the wait read from the trigger's retry log line."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_oauthcc.triggers.oauth_http import OAuthHttpTrigger
from devserver import DevServer
from tests.support.connections import airflow_conn, conn_json
from tests.support.deferral import first_event

from .conftest import SECRET

pytestmark = pytest.mark.integration

CONN = "deferred_retry_after"


@pytest.fixture
def conn(server: DevServer) -> Iterator[str]:
    with airflow_conn(CONN, conn_json(server.api_url, "app", SECRET, auth_url=server.token_url)):
        yield CONN


def run(trigger: OAuthHttpTrigger) -> dict[str, Any]:
    # Bounded so that a wait of an hour fails the test instead of hanging it.
    event = asyncio.run(asyncio.wait_for(first_event(trigger), timeout=30))
    payload: dict[str, Any] = event.payload
    return payload


def retry_waits(output: pytest.CaptureFixture[str]) -> list[str]:
    """The waits the trigger's hook chose, as its log lines say them (Airflow 3 logs through
    structlog to stdout, Airflow 2 through logging: both end up in the captured output)."""
    text = "".join(output.readouterr())
    return re.findall(r"on attempt \d+; retrying in ([\d.]+) s", text)


def test_retry_after_is_waited_for(
    server: DevServer, conn: str, capfd: pytest.CaptureFixture[str]
) -> None:
    server.api_faults.add(status=429, retry_after=1, times=1)
    event = run(OAuthHttpTrigger(conn, "/v1/whoami", retries=2))
    assert event["status"] == "success", event
    # Without Retry-After the first backoff is at most 0.5 s.
    assert retry_waits(capfd) == ["1.0"]


def test_retry_after_is_bounded_by_retry_max_wait(
    server: DevServer, conn: str, capfd: pytest.CaptureFixture[str]
) -> None:
    server.api_faults.add(status=503, retry_after=3600, times=1)
    event = run(OAuthHttpTrigger(conn, "/v1/whoami", retries=2, retry_max_wait=0.2))
    assert event["status"] == "success", event
    assert retry_waits(capfd) == ["0.2"]
