"""The hook's pull API (``paginate``, ``pull_to``, ``run(retries=...)``) against the local
authorization server and API, with 429 and 503 faults injected on every paginator."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import tenacity

from airflow_provider_oauthcc.auth.errors import ApiError, OriginNotAllowedError, TokenRequestError
from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook
from airflow_provider_oauthcc.hooks.oauth_cc_async import OAuthCCAsyncHook
from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
from airflow_provider_oauthcc.pull.pagination import (
    CursorPaginator,
    FunctionPaginator,
    LinkHeaderPaginator,
    NextUrlPaginator,
    OffsetPaginator,
    Page,
    PageNumberPaginator,
    PageRequest,
    Paginator,
)
from devserver import DevServer

from .conftest import api_connection

pytestmark = pytest.mark.integration

RECORDS = 200
LIMIT = 40
PAGES = RECORDS // LIMIT


class AfterLastId(Paginator):
    """A user's own paginator: asks for the records after the last id it got."""

    def next_request(self, page: Page) -> PageRequest | None:
        if not page.records:
            return None
        return page.request.with_params(after=page.records[-1]["id"])


def _after_last_id(response: requests.Response) -> dict[str, Any] | None:
    records = response.json()
    return {"data": {"limit": LIMIT, "after": records[-1]["id"]}} if records else None


class _ToLinkItems:
    """pagination_function's result as a request; the URL is absolute, as a user's would be."""

    api_url = ""

    def __call__(self, params: dict[str, Any]) -> PageRequest:
        return PageRequest(url=f"{self.api_url}/v1/link/items", data=params["data"])


_TO_LINK_ITEMS = _ToLinkItems()


# (endpoint, paginator, records_path, first request's data)
PAGINATED = {
    "link": ("/v1/link/items", LinkHeaderPaginator(), None, {"limit": LIMIT}),
    "next-url": ("/v1/next/items", NextUrlPaginator("next"), "data", {"limit": LIMIT}),
    "cursor": (
        "/v1/cursor/items",
        CursorPaginator("next_cursor", "cursor"),
        "items",
        {"limit": LIMIT},
    ),
    "page-number": (
        "/v1/page/items",
        PageNumberPaginator(total_pages_path="total_pages", page_size=LIMIT),
        "data",
        {},
    ),
    "offset": ("/v1/offset/items", OffsetPaginator(limit=LIMIT, total_path="total"), "results", {}),
    "custom": ("/v1/link/items", AfterLastId(), None, {"limit": LIMIT}),
    "function": (
        "/v1/link/items",
        FunctionPaginator(_after_last_id, _TO_LINK_ITEMS),
        None,
        {"limit": LIMIT},
    ),
}


@pytest.fixture
def conn(api: DevServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    _TO_LINK_ITEMS.api_url = api.api_url
    yield api_connection(api, monkeypatch, records=RECORDS)
    api.api_faults.clear()


def _faults(api: DevServer) -> None:
    """Every 3rd request a 429, every 4th a 503 (both with Retry-After: 0, to stay quick)."""
    api.api_faults.add(status=429, every=3, retry_after=0)
    api.api_faults.add(status=503, every=4, retry_after=0)


def _faulted(api: DevServer) -> int:
    by_status = api.stats.api_requests_by_status
    return by_status[429] + by_status[503]


@pytest.mark.parametrize("style", list(PAGINATED))
def test_paginate_yields_every_record_once_through_429_and_503(
    api: DevServer, conn: str, style: str
) -> None:
    endpoint, paginator, records_path, data = PAGINATED[style]
    _faults(api)
    pull = OAuthCCHook(oauth_conn_id=conn).paginate(
        endpoint, paginator=paginator, records_path=records_path, data=data
    )
    ids = [record["id"] for record in pull.records()]
    assert ids == list(range(1, RECORDS + 1))
    assert pull.completed and not pull.truncated
    assert _faulted(api) >= 3, "the faults did not fire"
    assert pull.retries == _faulted(api)
    served = api.stats.api_requests_by_status[200]
    assert served == pull.pages, "a page was fetched twice"
    assert pull.fetcher.closed


@pytest.mark.parametrize("style", list(PAGINATED))
def test_async_paginate_yields_every_record_once_through_429_and_503(
    api: DevServer, conn: str, style: str
) -> None:
    endpoint, paginator, records_path, data = PAGINATED[style]
    _faults(api)
    hook = OAuthCCAsyncHook(oauth_conn_id=conn)

    async def pull_all() -> tuple[list[int], Any]:
        async with hook.paginate(
            None, endpoint, paginator=paginator, records_path=records_path, data=data
        ) as pull:
            return [record["id"] async for record in pull.records()], pull

    ids, pull = asyncio.run(pull_all())
    assert ids == list(range(1, RECORDS + 1))
    assert pull.completed and not pull.truncated
    assert _faulted(api) >= 3, "the faults did not fire"
    assert pull.retries == _faulted(api)
    assert api.stats.api_requests_by_status[200] == pull.pages


def test_answers_cut_off_mid_body_are_retried_sync_and_async(api: DevServer, conn: str) -> None:
    api.api_faults.add(reset=True, every=3)
    hook = OAuthCCHook(oauth_conn_id=conn)
    pull = hook.paginate("/v1/link/items", paginator=LinkHeaderPaginator(), data={"limit": LIMIT})
    assert [record["id"] for record in pull.records()] == list(range(1, RECORDS + 1))
    assert pull.retries >= 2

    async def pull_all() -> list[int]:
        async_hook = OAuthCCAsyncHook(oauth_conn_id=conn)
        first = {"limit": LIMIT}
        async with async_hook.paginate(
            None, "/v1/link/items", paginator=LinkHeaderPaginator(), data=first
        ) as again:
            ids = [record["id"] async for record in again.records()]
        assert again.retries >= 2
        return ids

    assert asyncio.run(pull_all()) == list(range(1, RECORDS + 1))


def test_async_pull_left_early_closes_the_session_it_opened(api: DevServer, conn: str) -> None:
    hook = OAuthCCAsyncHook(oauth_conn_id=conn)
    opened: list[Any] = []

    async def first_page_only() -> Any:
        session = await hook.session()
        opened.append(session)
        async with hook.paginate(
            session, "/v1/link/items", paginator=LinkHeaderPaginator(), data={"limit": LIMIT}
        ) as pull:
            async for page in pull:
                assert page.number == 1
                break
        assert not session.closed, "a session the caller passed is the caller's to close"
        await session.close()

        session_of = hook.session

        async def recorded(extra_options: Any = None) -> Any:
            opened.append(await session_of(extra_options))
            return opened[-1]

        hook.session = recorded  # type: ignore[method-assign]
        own = hook.paginate(None, "/v1/link/items", paginator=LinkHeaderPaginator())
        async with own:
            async for _ in own:
                break
        return own

    own = asyncio.run(first_page_only())
    assert own.closed and not own.completed
    assert len(opened) == 2 and opened[1].closed, "the session the pull opened is still open"
    assert api.stats.api_requests == 2


def test_async_next_page_on_another_origin_stops_the_pull(api: DevServer, conn: str) -> None:
    class Elsewhere(Paginator):
        def next_request(self, page: Page) -> PageRequest | None:
            return page.request.follow("http://127.0.0.2:9/v1/items")

    async def pull_all() -> None:
        hook = OAuthCCAsyncHook(oauth_conn_id=conn)
        async with hook.paginate(None, "/v1/link/items", paginator=Elsewhere()) as pull:
            async for _ in pull:
                pass

    with pytest.raises(OriginNotAllowedError):
        asyncio.run(pull_all())
    assert api.stats.api_requests == 1


def test_pages_carry_number_body_response_and_records(api: DevServer, conn: str) -> None:
    pull = OAuthCCHook(oauth_conn_id=conn).paginate(
        "/v1/next/items", paginator=NextUrlPaginator(), records_path="data", data={"limit": LIMIT}
    )
    pages = list(pull)
    assert [page.number for page in pages] == list(range(1, PAGES + 1))
    assert pages[0].response.status_code == 200
    assert pages[0].body["data"] == list(pages[0].records)
    assert pull.pages == PAGES and pull.records_count == RECORDS
    with pytest.raises(RuntimeError, match="iterated once"):
        list(pull)


def test_max_pages_stops_and_says_truncated(api: DevServer, conn: str) -> None:
    pull = OAuthCCHook(oauth_conn_id=conn).paginate(
        "/v1/link/items", paginator=LinkHeaderPaginator(), data={"limit": LIMIT}, max_pages=2
    )
    assert len(list(pull.records())) == 2 * LIMIT
    assert pull.truncated and pull.pages == 2
    assert api.stats.api_requests == 2


def test_leaving_a_pull_early_closes_its_session(api: DevServer, conn: str) -> None:
    hook = OAuthCCHook(oauth_conn_id=conn)
    pull = hook.paginate("/v1/link/items", paginator=LinkHeaderPaginator(), data={"limit": LIMIT})
    for page in pull:
        assert page.number == 1
        break
    assert pull.fetcher.closed and not pull.completed
    assert api.stats.api_requests == 1

    with hook.paginate("/v1/link/items", paginator=LinkHeaderPaginator()) as second:
        next(iter(second))
    assert second.fetcher.closed


def test_a_next_page_on_another_origin_stops_the_pull(api: DevServer, conn: str) -> None:
    other = "http://127.0.0.2:9/v1/items"

    class Elsewhere(Paginator):
        def next_request(self, page: Page) -> PageRequest | None:
            return page.request.follow(other)

    pull = OAuthCCHook(oauth_conn_id=conn).paginate(
        "/v1/link/items", paginator=Elsewhere(), data={"limit": LIMIT}
    )
    with pytest.raises(OriginNotAllowedError, match="Page 2"):
        list(pull)
    assert api.stats.api_requests == 1
    assert pull.fetcher.closed


def test_an_allowed_origin_gets_the_page_url_only(api: DevServer, conn: str) -> None:
    from tests.support.canned_http import Canned, CannedServer

    elsewhere = CannedServer()
    try:
        elsewhere.add(Canned(200, json.dumps([{"id": 999}]), {"Content-Type": "application/json"}))

        class ThenElsewhere(Paginator):
            def next_request(self, page: Page) -> PageRequest | None:
                return page.request.follow(f"{elsewhere.url}/part-2") if page.number == 1 else None

        pull = OAuthCCHook(oauth_conn_id=conn).paginate(
            "/v1/link/items",
            paginator=ThenElsewhere(),
            data={"limit": 2},
            headers={"X-Task": "task-header-4471"},
            allowed_origins=[elsewhere.url],
        )
        assert [record["id"] for record in pull.records()] == [1, 2, 999]
        [seen] = elsewhere.requests
        headers = {k.lower(): v for k, v in seen.headers.items()}
        assert "authorization" not in headers and "x-task" not in headers
        assert api.stats.api_captures[0].headers.get("X-Task") == "task-header-4471"
    finally:
        elsewhere.close()


def test_progress_and_summary_lines(
    api: DevServer, conn: str, capfd: pytest.CaptureFixture[str]
) -> None:
    api.api_faults.add(status=503, times=1, retry_after=0)
    hook = OAuthCCHook(oauth_conn_id=conn)
    pull = hook.paginate(
        "/v1/link/items?key=do-not-log",
        paginator=LinkHeaderPaginator(),
        data={"limit": LIMIT},
        progress_interval=0,
    )
    list(pull)
    text = "".join(capfd.readouterr())
    assert hook.get_token() not in text and "item-1" not in text
    assert "Pulling GET /v1/link/items from http://127.0.0.1" in text
    assert "do-not-log" not in text
    assert f"Page {PAGES}: {LIMIT} records ({RECORDS:,} so far)" in text
    assert f"Pulled {RECORDS:,} records in {PAGES} pages in" in text
    assert "1 retried requests" in text


def test_pull_to_returns_the_operators_summary(api: DevServer, conn: str, tmp_path: Path) -> None:
    _faults(api)
    target = tmp_path / "out" / "items.jsonl"
    summary = OAuthCCHook(oauth_conn_id=conn).pull_to(
        f"file://{target}", "/v1/cursor/items", paginator=CursorPaginator(), records_path="items"
    )
    lines = target.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == list(range(1, RECORDS + 1))
    retried = _faulted(api)

    api.reset()
    api.dataset_size = RECORDS
    by_operator = OAuthHttpOperator(
        task_id="t",
        oauth_conn_id=conn,
        endpoint="/v1/cursor/items",
        paginate=CursorPaginator(),
        records_path="items",
        output_path=f"file://{tmp_path / 'operator.jsonl'}",
    ).execute({})
    assert set(summary) == set(by_operator)
    assert summary["records"] == by_operator["records"] == RECORDS
    assert summary["pages"] == by_operator["pages"]
    assert summary["bytes"] == by_operator["bytes"] == target.stat().st_size
    assert summary["retries"] == retried and summary["truncated"] is False
    assert summary["path"] == f"file://{target}"


def test_pull_to_a_failing_pull_leaves_nothing(api: DevServer, conn: str, tmp_path: Path) -> None:
    api.api_faults.add(status=400, every=3)  # page 3 is refused, not retried
    target = tmp_path / "items.jsonl"
    with pytest.raises(ApiError, match="400"):
        OAuthCCHook(oauth_conn_id=conn).pull_to(
            f"file://{target}",
            "/v1/link/items",
            paginator=LinkHeaderPaginator(),
            data={"limit": LIMIT},
        )
    assert api.stats.api_requests == 3
    assert list(tmp_path.iterdir()) == []


def test_pull_to_refuses_pagination_options_for_a_streamed_answer(conn: str) -> None:
    with pytest.raises(ValueError, match="JSON pages only"):
        OAuthCCHook(oauth_conn_id=conn).pull_to(
            "file:///tmp/x.csv", "/v1/items", paginator=LinkHeaderPaginator(), response_format="csv"
        )
    with pytest.raises(ValueError, match="decompress"):
        OAuthCCHook(oauth_conn_id=conn).pull_to("file:///tmp/x.jsonl", "/v1/items", decompress=True)


def test_pull_to_hands_a_streamed_format_to_the_stream_writer(
    api: DevServer, conn: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The seam to ``pull.stream``: its writer gets the pull's fetcher (retries, egress), the
    first request, the target and the options, and its summary comes back as it is."""
    import types

    from airflow_provider_oauthcc.pull.engine import PageFetcher

    calls: list[dict[str, Any]] = []

    def stream_to_storage(fetcher: Any, request: Any, target: Any, **options: Any) -> Any:
        response = fetcher.fetch(request)  # through the pull's retries: the 503 below
        calls.append({"fetcher": fetcher, "request": request, "target": target, **options})
        return {"path": str(target), "bytes": len(response.content)}

    stream = types.ModuleType("airflow_provider_oauthcc.pull.stream")
    stream.stream_to_storage = stream_to_storage  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "airflow_provider_oauthcc.pull.stream", stream)
    api.api_faults.add(status=503, retry_after=0)
    target = f"file://{tmp_path / 'export.ndjson'}"
    summary = OAuthCCHook(oauth_conn_id=conn).pull_to(
        target, "/v1/link/items", response_format="ndjson", decompress=True, owner="o1"
    )
    [call] = calls
    assert isinstance(call["fetcher"], PageFetcher) and call["fetcher"].retries == 1
    assert call["request"].url == f"{api.api_url}/v1/link/items"
    assert str(call["target"]) == target == summary["path"]
    assert call["response_format"] == "ndjson" and call["decompress"] is True
    assert call["owner"] == "o1" and call["progress_interval"] == 5.0
    assert summary["bytes"] > 0


# -- run() -------------------------------------------------------------------------------------


def _gap_after_first(api: DevServer) -> float:
    first, second = api.stats.api_captures[:2]
    return second.timestamp - first.timestamp


def test_run_without_retries_is_http_hook_run(api: DevServer, conn: str) -> None:
    api.api_faults.add(status=429, retry_after=1)
    with pytest.raises(ApiError, match="429"):
        OAuthCCHook(oauth_conn_id=conn).run("/v1/whoami")
    assert api.stats.api_requests == 1


def test_run_with_retries_waits_for_retry_after(api: DevServer, conn: str) -> None:
    api.api_faults.add(status=429, retry_after=1)
    response = OAuthCCHook(oauth_conn_id=conn).run("/v1/whoami", retries=2)
    assert response.json()["client_id"] == "app"
    assert api.stats.api_requests_by_status == {429: 1, 200: 1}
    assert _gap_after_first(api) >= 1.0


def test_run_with_retries_gives_up_after_them(api: DevServer, conn: str) -> None:
    api.api_faults.add(status=503, times=5, retry_after=0)
    with pytest.raises(ApiError, match=r"503.*gave up after 3 attempts"):
        OAuthCCHook(oauth_conn_id=conn).run("/v1/whoami", retries=2)
    assert api.stats.api_requests == 3


def test_run_retries_a_post_only_when_the_server_did_not_act(api: DevServer, conn: str) -> None:
    hook = OAuthCCHook(method="POST", oauth_conn_id=conn)
    api.api_faults.add(status=503, times=1, retry_after=0)
    assert hook.run("/v1/echo", data={"a": "1"}, retries=2).json()["form"] == {"a": ["1"]}
    api.reset()
    api.api_faults.add(status=500, times=1)
    with pytest.raises(ApiError, match="500"):
        hook.run("/v1/echo", data={"a": "1"}, retries=2)
    assert api.stats.api_requests == 1


USER_RETRY_ARGS = {
    "stop": tenacity.stop_after_attempt(3),
    "wait": tenacity.wait_none(),
    "retry": tenacity.retry_if_exception_type(ApiError),
    "reraise": True,
}


def test_user_retry_args_still_honour_retry_after_in_run(api: DevServer, conn: str) -> None:
    api.api_faults.add(status=429, retry_after=1)
    response = OAuthCCHook(oauth_conn_id=conn).run("/v1/whoami", retry_args=USER_RETRY_ARGS)
    assert response.status_code == 200
    assert _gap_after_first(api) >= 1.0


def test_run_with_advanced_retry_honours_retry_after(api: DevServer, conn: str) -> None:
    api.api_faults.add(status=503, retry_after=1)
    hook = OAuthCCHook(oauth_conn_id=conn)
    response = hook.run_with_advanced_retry(USER_RETRY_ARGS, "/v1/whoami")
    assert response.status_code == 200
    assert api.stats.api_requests_by_status == {503: 1, 200: 1}
    assert _gap_after_first(api) >= 1.0


def test_user_retry_args_still_honour_retry_after_in_the_operator(
    api: DevServer, conn: str
) -> None:
    api.api_faults.add(status=429, retry_after=1)
    task = OAuthHttpOperator(
        task_id="t", oauth_conn_id=conn, endpoint="/v1/whoami", retry_args=USER_RETRY_ARGS
    )
    assert "app" in task.execute({})
    assert _gap_after_first(api) >= 1.0


def test_user_retry_args_never_retry_a_refused_credential(
    api: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.connections import conn_json

    api.reset()
    value = conn_json(api.api_url, "app", "wrong-secret", auth_url=api.token_url)
    monkeypatch.setenv("AIRFLOW_CONN_REFUSED", value)
    everything = {**USER_RETRY_ARGS, "retry": tenacity.retry_if_exception_type(Exception)}
    with pytest.raises(TokenRequestError):
        OAuthCCHook(oauth_conn_id="refused").run("/v1/whoami", retry_args=everything)
    with pytest.raises(TokenRequestError):
        OAuthCCHook(oauth_conn_id="refused").run_with_advanced_retry(everything, "/v1/whoami")
    assert api.stats.token_requests == 2
