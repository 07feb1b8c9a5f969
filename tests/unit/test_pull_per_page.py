"""What PageFetcher decides once per pull rather than on every page: whether its DEBUG line
is kept, and the merged request options when a page brings none of its own."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import requests

from airflow_provider_oauthcc.pull import engine as pull
from airflow_provider_oauthcc.pull.engine import PageFetcher
from airflow_provider_oauthcc.pull.pagination import PageRequest
from airflow_provider_oauthcc.pull.retry import RetryPolicy
from tests.support.canned_http import Canned, CannedServer


def fetcher_for(session: requests.Session, log: logging.Logger) -> PageFetcher:
    return PageFetcher(
        session,
        method="GET",
        options={"timeout": 5},
        check_response=lambda response: response.raise_for_status(),
        policy=RetryPolicy(retries=0),
        log=log,
    )


@pytest.fixture
def shown_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = pull.shown

    def counting(url: str) -> str:
        calls.append(url)
        return real(url)

    monkeypatch.setattr(pull, "shown", counting)
    return calls


def test_at_debug_every_page_says_where_it_is_sent(
    canned: CannedServer, caplog: pytest.LogCaptureFixture, shown_calls: list[str]
) -> None:
    canned.default = Canned(200, "[]", {"Content-Type": "application/json"})
    log = logging.getLogger("oauthcc.test.pull.debug")
    caplog.set_level(logging.DEBUG, logger=log.name)
    with requests.Session() as session:
        fetcher = fetcher_for(session, log)
        for page in (1, 2):
            fetcher.fetch(PageRequest(f"{canned.url}/items?page={page}"), page)
    assert [r.getMessage() for r in caplog.records] == [f"Sending GET to {canned.url}"] * 2
    assert len(shown_calls) == 2


def test_above_debug_no_page_formats_the_debug_line(
    canned: CannedServer, caplog: pytest.LogCaptureFixture, shown_calls: list[str]
) -> None:
    canned.default = Canned(200, "[]", {"Content-Type": "application/json"})
    log = logging.getLogger("oauthcc.test.pull.info")
    caplog.set_level(logging.INFO, logger=log.name)
    with requests.Session() as session:
        fetcher = fetcher_for(session, log)
        for page in (1, 2, 3):
            fetcher.fetch(PageRequest(f"{canned.url}/items?page={page}"), page)
    assert len(canned.requests) == 3
    assert shown_calls == []
    assert caplog.records == []


def test_a_pages_own_options_still_win_over_the_pulls(canned: CannedServer) -> None:
    canned.default = Canned(404, "gone")
    with requests.Session() as session:
        fetcher = fetcher_for(session, logging.getLogger("oauthcc.test.pull.options"))
        unchecked: dict[str, Any] = {"check_response": False}
        response = fetcher.fetch(PageRequest(f"{canned.url}/a", options=unchecked), 1)
        assert response.status_code == 404
        with pytest.raises(requests.HTTPError):
            fetcher.fetch(PageRequest(f"{canned.url}/b"), 2)
