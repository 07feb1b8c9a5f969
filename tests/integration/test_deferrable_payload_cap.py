"""Bounded trigger events: an answer above ``events.MAX_EVENT_BODY`` (256 KiB) is not stored in
the metadata database; the trigger says "too large" and the task sends the request again from
the worker, where the answer is streamed and paginated as without deferral."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
from airflow_provider_oauthcc.pull.deferred import first_page_answer
from airflow_provider_oauthcc.pull.pagination import PageNumberPaginator
from airflow_provider_oauthcc.triggers import events
from airflow_provider_oauthcc.triggers.oauth_http import OAuthHttpTrigger
from devserver import DevServer
from tests.support.deferral import Deferrals, run_deferrable

from .conftest import API_SECRET, api_connection
from .test_deferrable_trigger import run

SECRET = API_SECRET
# 100 records of 4 KB each: about 400 KiB, above the cap and far below the old 8 MiB.
LARGE_PAGE = {"per_page": 100, "pad": 4000}
SMALL_PAGE = {"per_page": 10, "pad": 100}


@pytest.fixture(autouse=True)
def crm(api: DevServer, monkeypatch: pytest.MonkeyPatch) -> str:
    return api_connection(api, monkeypatch, records=300, conn_id="crm_cap")


def test_the_cap_is_far_below_the_old_8_mib() -> None:
    assert events.MAX_EVENT_BODY == 256 * 1024


def test_a_large_answer_is_not_put_in_the_event(api: DevServer, crm: str) -> None:
    event = run(OAuthHttpTrigger(crm, "/v1/page/items", data=LARGE_PAGE))
    assert event["status"] == events.TOO_LARGE
    assert event["size"] > events.MAX_EVENT_BODY and event["limit"] == events.MAX_EVENT_BODY
    assert len(json.dumps(event)) < 1024


def test_an_answer_below_the_cap_is_handed_back(api: DevServer, crm: str) -> None:
    event = run(OAuthHttpTrigger(crm, "/v1/page/items", data=SMALL_PAGE))
    assert event["status"] == events.SUCCESS
    assert len(events.decode_response(event["response"]).json()["data"]) == 10


def test_a_non_idempotent_request_is_not_sent_twice(api: DevServer, crm: str) -> None:
    """A POST already reached the API: the worker must not repeat it; the task fails instead."""
    body = {"blob": "y" * 150_000}  # echoed twice (as JSON and as the raw body): about 300 KB
    event = run(OAuthHttpTrigger(crm, "/v1/echo", method="POST", json=body))
    assert event["status"] == events.ERROR
    assert "without deferrable=True" in event["error"]["message"]


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def error(self, msg: Any, /, *args: Any) -> None:
        self.lines.append(msg % args)

    def info(self, msg: Any, /, *args: Any) -> None:
        self.lines.append(msg % args)


def test_a_too_large_event_makes_the_worker_fetch_page_one() -> None:
    log = _Log()
    event = {"status": events.TOO_LARGE, "size": 400_000, "limit": events.MAX_EVENT_BODY}
    assert first_page_answer(event, log) is None
    assert "from the worker" in log.lines[0]


def test_the_operator_resends_the_first_request_from_the_worker(api: DevServer, crm: str) -> None:
    kwargs: dict[str, Any] = {
        "task_id": "pull",
        "oauth_conn_id": crm,
        "endpoint": "/v1/page/items",
        "data": {"pad": LARGE_PAGE["pad"]},
        "paginate": PageNumberPaginator(total_pages_path="total_pages", page_size=100),
        "records_path": "data",
    }
    expected = OAuthHttpOperator(**kwargs).execute({})
    api.stats.reset()
    deferrals = Deferrals()
    got = run_deferrable(OAuthHttpOperator(deferrable=True, **kwargs), {}, deferrals)
    assert got == expected and len(got) == 300
    assert [e["status"] for e in deferrals.events] == [events.TOO_LARGE]
    # Page 1 twice (the triggerer's answer was dropped), then pages 2 and 3 from the worker.
    pages = [c.query_string for c in api.stats.api_captures]
    assert len(pages) == 4 and pages[0] == pages[1]
