"""``max_pages`` bounds a ``pagination_function`` pull as it bounds a paginator: both the
HttpOperator-compatible call (a list of responses) and a pull into a file stop after that many
requests, and say so; a bound the API never reaches changes nothing."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
from devserver import DevServer

from .conftest import API_SECRET, api_connection

pytestmark = pytest.mark.integration

SECRET = API_SECRET
STOPPED = "Stopped at max_pages="


@pytest.fixture(autouse=True)
def crm(api: DevServer, monkeypatch: pytest.MonkeyPatch) -> str:
    return api_connection(api, monkeypatch, records=250)


def next_page(response: requests.Response) -> dict[str, Any] | None:
    body = response.json()
    return {"data": {"page": body["page"] + 1}} if body["page"] < body["total_pages"] else None


def operator(**kwargs: Any) -> OAuthHttpOperator:
    return OAuthHttpOperator(
        task_id="pull",
        oauth_conn_id="crm",
        endpoint="/v1/page/items",
        pagination_function=next_page,
        **kwargs,
    )


def logged(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> str:
    """The task's log lines (structlog writes them to the terminal, stdlib to caplog)."""
    out, err = capfd.readouterr()
    return out + err + caplog.text


def test_the_responses_stop_at_max_pages(
    api: DevServer, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        pages = operator(data={"per_page": 40}, max_pages=2).execute({})
    assert [json.loads(page)["page"] for page in pages] == [1, 2]  # of 7
    assert api.stats.api_requests == 2
    assert f"{STOPPED}2 although the API has more pages" in logged(capfd, caplog)


def test_a_pull_into_a_file_stops_at_max_pages_and_says_truncated(
    api: DevServer, tmp_path: Path
) -> None:
    target = tmp_path / "items.jsonl"
    summary = operator(
        data={"per_page": 40}, records_path="data", max_pages=3, output=str(target)
    ).execute({})
    assert (summary["pages"], summary["records"], summary["truncated"]) == (3, 120, True)
    ids = [json.loads(line)["id"] for line in target.read_text().splitlines()]
    assert ids == list(range(1, 121))
    assert api.stats.api_requests == 3


def test_a_bound_the_api_does_not_reach_changes_nothing(
    api: DevServer,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        pages = operator(data={"per_page": 50}, max_pages=5).execute({})
        summary = operator(
            data={"per_page": 50},
            records_path="data",
            max_pages=5,
            output=str(tmp_path / "items.jsonl"),
        ).execute({})
    assert [json.loads(page)["page"] for page in pages] == [1, 2, 3, 4, 5]
    assert (summary["pages"], summary["records"], summary["truncated"]) == (5, 250, False)
    assert api.stats.api_requests == 10
    assert "Calling GET /v1/page/items" in (text := logged(capfd, caplog))
    assert STOPPED not in text
