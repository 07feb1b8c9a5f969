"""OAuthHttpOperator against the real local authorization server and API: each paginator,
max_pages, HttpOperator-compatible XCom, templating, asset events, sessions, logs."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from airflow.providers.common.compat.sdk import AirflowException, Asset
from airflow.providers.http.operators.http import HttpOperator

from airflow_provider_oauthcc.auth.errors import ApiError
from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
from airflow_provider_oauthcc.pull.pagination import (
    CursorPaginator,
    LinkHeaderPaginator,
    NextUrlPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    Paginator,
)
from devserver import DevServer
from devserver.dataset import EPOCH, STEP

from .conftest import API_SECRET, api_connection

pytestmark = pytest.mark.integration

SECRET = API_SECRET


@pytest.fixture(autouse=True)
def crm(api: DevServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """The connection ``crm`` for the operator, and a server reset to 250 records."""
    return api_connection(api, monkeypatch, records=250)


def pull(**kwargs: Any) -> OAuthHttpOperator:
    kwargs.setdefault("task_id", "pull")
    kwargs.setdefault("oauth_conn_id", "crm")
    return OAuthHttpOperator(**kwargs)


def ids_in(path: Path) -> list[int]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


STYLES: dict[str, tuple[str, Paginator, str | None, int]] = {
    # name: endpoint, paginator, records_path, requests for 250 records at 40 per page
    "link": ("/v1/link/items", LinkHeaderPaginator(), None, 7),
    "next_url": ("/v1/next/items", NextUrlPaginator("next"), "data", 7),
    "cursor": ("/v1/cursor/items", CursorPaginator("next_cursor", "cursor"), "items", 7),
    "page_total": (
        "/v1/page/items",
        PageNumberPaginator(total_pages_path="total_pages", page_size=40),
        "data",
        7,
    ),
    "page_until_empty": ("/v1/page/items", PageNumberPaginator(page_size=40), "data", 8),
    "offset_total": (
        "/v1/offset/items",
        OffsetPaginator(limit=40, total_path="total"),
        "results",
        7,
    ),
    "offset_until_empty": ("/v1/offset/items", OffsetPaginator(limit=40), "results", 8),
}


@pytest.mark.parametrize("style", list(STYLES))
def test_each_paginator_streams_every_record_once(
    style: str, api: DevServer, tmp_path: Path
) -> None:
    endpoint, paginator, records_path, requests_expected = STYLES[style]
    target = tmp_path / "out" / "items.jsonl"
    summary = pull(
        endpoint=endpoint,
        data={"limit": 40},
        paginate=paginator,
        records_path=records_path,
        output=target.as_uri(),
    ).execute({})
    assert ids_in(target) == list(range(1, 251))
    assert summary["records"] == 250 and summary["pages"] == requests_expected
    assert summary["bytes"] == target.stat().st_size and summary["path"] == target.as_uri()
    assert summary["truncated"] is False and summary["retries"] == 0
    assert api.stats.api_requests == requests_expected
    assert api.stats.token_requests == 1
    assert list((tmp_path / "out").iterdir()) == [target]


@pytest.mark.parametrize("style", ["link", "next_url", "cursor", "page_total", "offset_total"])
def test_filters_are_kept_on_every_page(style: str) -> None:
    endpoint, paginator, records_path, _ = STYLES[style]
    window = {
        "updated_since": (EPOCH + 49 * STEP).isoformat(),  # id 50
        "updated_before": (EPOCH + 149 * STEP).isoformat(),  # up to id 149
        "limit": 30,
    }
    records = pull(
        endpoint=endpoint, data=window, paginate=paginator, records_path=records_path
    ).execute({})
    assert [r["id"] for r in records] == list(range(50, 150))


def test_max_pages_stops_and_says_truncated(api: DevServer, tmp_path: Path) -> None:
    target = tmp_path / "items.jsonl"
    summary = pull(
        endpoint="/v1/link/items",
        data={"limit": 40},
        paginate=LinkHeaderPaginator(),
        max_pages=3,
        output=str(target),
    ).execute({})
    assert summary["pages"] == 3 and summary["records"] == 120 and summary["truncated"] is True
    assert ids_in(target) == list(range(1, 121))
    assert api.stats.api_requests == 3


def test_max_pages_without_more_pages_is_not_truncated(tmp_path: Path) -> None:
    summary = pull(
        endpoint="/v1/link/items",
        data={"limit": 125},
        paginate=LinkHeaderPaginator(),
        max_pages=2,
        output=str(tmp_path / "items.jsonl"),
    ).execute({})
    assert summary["pages"] == 2 and summary["records"] == 250 and summary["truncated"] is False


def test_paginate_without_output_returns_the_records(api: DevServer) -> None:
    records = pull(
        endpoint="/v1/cursor/items",
        data={"limit": 100},
        paginate=CursorPaginator(),
        records_path="items",
    ).execute({})
    assert [r["id"] for r in records] == list(range(1, 251))
    assert api.stats.api_requests == 3


def test_response_filter_picks_the_records_of_each_page(tmp_path: Path) -> None:
    target = tmp_path / "names.jsonl"
    pull(
        endpoint="/v1/next/items",
        data={"limit": 100},
        paginate=NextUrlPaginator(),
        response_filter=lambda response: [r["name"] for r in response.json()["data"]],
        output=str(target),
    ).execute({})
    assert target.read_text().splitlines()[:2] == ['"item-1"', '"item-2"']


def test_a_wrong_records_path_names_the_keys_there_are(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"records_path 'rows'.*keys: data, next"):
        pull(
            endpoint="/v1/next/items",
            paginate=NextUrlPaginator(),
            records_path="rows",
            output=str(tmp_path / "x.jsonl"),
        ).execute({})
    assert list(tmp_path.iterdir()) == []


def test_pagination_function_with_output_streams_pages(api: DevServer, tmp_path: Path) -> None:
    def next_page(response: requests.Response) -> dict[str, Any] | None:
        body = response.json()
        return {"data": {"page": body["page"] + 1}} if body["page"] < body["total_pages"] else None

    target = tmp_path / "items.jsonl"
    summary = pull(
        endpoint="/v1/page/items",
        data={"per_page": 100},
        pagination_function=next_page,
        records_path="data",
        output=str(target),
    ).execute({})
    assert ids_in(target) == list(range(1, 251)) and summary["pages"] == 3


# -- HttpOperator compatibility ---------------------------------------------------------------


@pytest.fixture
def plain_http(api: DevServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """An ``http`` connection with a static bearer token, for the stock HttpOperator."""
    token = requests.post(
        api.token_url, data={"grant_type": "client_credentials"}, auth=("app", SECRET), timeout=10
    ).json()["access_token"]
    extra = {"Authorization": f"Bearer {token}"}
    value = json.dumps({"conn_type": "http", "host": api.api_url, "extra": extra})
    monkeypatch.setenv("AIRFLOW_CONN_PLAIN", value)
    return "plain"


def next_page_function(response: requests.Response) -> dict[str, Any] | None:
    body = response.json()
    if body["page"] >= body["total_pages"]:
        return None
    return {"data": {"page": body["page"] + 1}}


COMPAT_CASES: dict[str, dict[str, Any]] = {
    "text": {"endpoint": "/v1/page/items", "data": {"per_page": 3}},
    "response_filter": {
        "endpoint": "/v1/page/items",
        "data": {"per_page": 3},
        "response_filter": lambda response: response.json()["data"],
    },
    "filter_with_context": {
        "endpoint": "/v1/page/items",
        "data": {"per_page": 2},
        "response_filter": lambda response, ds: [ds, response.json()["page"]],
    },
    "pagination_function": {
        "endpoint": "/v1/page/items",
        "data": {"per_page": 100},
        "pagination_function": next_page_function,
    },
    "pagination_function_and_filter": {
        "endpoint": "/v1/page/items",
        "data": {"per_page": 100},
        "pagination_function": next_page_function,
        "response_filter": lambda responses: [len(r.json()["data"]) for r in responses],
    },
    "post_form": {"endpoint": "/v1/echo", "method": "POST", "data": {"a": "1", "b": "two"}},
    "post_json": {
        "endpoint": "/v1/echo",
        "method": "PUT",
        "request_kwargs": {"json": {"x": [1, 2]}},
    },
    "response_check_passes": {
        "endpoint": "/v1/page/items",
        "response_check": lambda response: response.json()["page"] == 1,
    },
}


@pytest.mark.parametrize("case", list(COMPAT_CASES))
def test_small_calls_return_what_http_operator_returns(case: str, plain_http: str) -> None:
    kwargs = dict(COMPAT_CASES[case])
    kwargs.setdefault("method", "GET")
    context: Any = {"ds": "2024-03-01"}
    expected = HttpOperator(task_id="stock", http_conn_id=plain_http, **kwargs).execute(context)
    got = pull(**kwargs).execute(context)
    assert got == expected


def test_failed_response_check_fails_like_http_operator(plain_http: str) -> None:
    kwargs: dict[str, Any] = {"endpoint": "/v1/whoami", "response_check": lambda response: False}
    with pytest.raises(AirflowException, match="Response check returned False"):
        HttpOperator(task_id="stock", http_conn_id=plain_http, method="GET", **kwargs).execute({})
    with pytest.raises(AirflowException, match="Response check returned False"):
        pull(**kwargs).execute({})


def test_client_error_raises_api_error_without_retrying(api: DevServer) -> None:
    api.api_faults.add(status=403, times=3)
    with pytest.raises(ApiError) as info:
        pull(endpoint="/v1/whoami").execute({})
    assert info.value.status == 403 and api.stats.api_requests == 1


# -- templating, assets, arguments --------------------------------------------------------------


def test_templated_fields_render_from_the_context(api: DevServer, tmp_path: Path) -> None:
    operator = pull(
        oauth_conn_id="{{ params.conn }}",
        endpoint="/v1/{{ params.style }}/items",
        data={
            "updated_since": "{{ data_interval_start.isoformat() }}",
            "updated_before": "{{ data_interval_end.isoformat() }}",
        },
        headers={"X-Run-Day": "{{ ds }}"},
        paginate=LinkHeaderPaginator(),
        output=tmp_path.as_uri() + "/{{ ds }}/items_{{ params.style }}.jsonl",
    )
    context: Any = {
        "ds": "2024-01-03",
        "data_interval_start": EPOCH + 48 * STEP,
        "data_interval_end": EPOCH + 72 * STEP,
        "params": {"conn": "crm", "style": "link"},
    }
    operator.render_template_fields(context)
    summary = operator.execute(context)
    target = tmp_path / "2024-01-03" / "items_link.jsonl"
    assert summary["path"] == target.as_uri()
    assert ids_in(target) == list(range(49, 73))
    assert all(c.headers.get("X-Run-Day") == "2024-01-03" for c in api.stats.api_captures)


def test_asset_outlets_receive_the_summary(tmp_path: Path) -> None:
    try:
        from airflow.sdk.execution_time.context import OutletEventAccessors
    except ImportError:  # Airflow 2.x
        from airflow.utils.context import OutletEventAccessors  # type: ignore[no-redef]

    asset = Asset(uri=tmp_path.as_uri())  # by URI: Airflow 2.x's Dataset has no name
    events = OutletEventAccessors()
    summary = pull(
        endpoint="/v1/link/items",
        paginate=LinkHeaderPaginator(),
        output=str(tmp_path / "items.jsonl"),
        outlets=[asset],
    ).execute({"outlet_events": events})  # type: ignore[arg-type]
    assert events[asset].extra == summary


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        (
            {"paginate": LinkHeaderPaginator(), "pagination_function": next_page_function},
            "either paginate or pagination_function",
        ),
        ({"paginate": "link"}, "paginate must be a paginator"),
        ({"max_pages": 0}, "max_pages must be >= 1"),
    ],
)
def test_wrong_arguments_fail_when_the_dag_is_parsed(kwargs: dict[str, Any], error: str) -> None:
    with pytest.raises((TypeError, ValueError), match=error):
        pull(endpoint="/v1/link/items", **kwargs)


def test_default_method_is_get_and_timeouts_are_on() -> None:
    operator = pull(endpoint="/v1/whoami")
    assert operator.method == "GET"
    hook = operator.hook
    hook.get_conn().close()
    assert hook.merged_extra["timeout"] > 0


def test_a_slow_api_times_out_per_extra_options(api: DevServer) -> None:
    api.api_faults.add(delay=0.5, times=2)
    with pytest.raises(requests.exceptions.ReadTimeout):
        pull(endpoint="/v1/whoami", extra_options={"timeout": 0.1}, page_retries=1).execute({})
    # Both slow requests answered (and counted) before the next test resets the counters.
    deadline = time.monotonic() + 60
    while api.stats.api_requests < 2:
        assert time.monotonic() < deadline, f"{api.stats.api_requests} of 2 slow requests done"
        time.sleep(0.02)


# -- resources and logs -------------------------------------------------------------------------


def open_connections_to(port: int) -> list[Any]:
    return [
        c
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    ]


@pytest.mark.parametrize("paged", [True, False])
def test_the_session_is_closed_after_the_task(paged: bool, api: DevServer, tmp_path: Path) -> None:
    port = int(api.api_url.rsplit(":", 1)[1])
    kwargs: dict[str, Any] = {"endpoint": "/v1/link/items", "data": {"limit": 20}}
    if paged:
        kwargs.update(paginate=LinkHeaderPaginator(), output=str(tmp_path / "x.jsonl"))
    pull(**kwargs).execute({})
    assert open_connections_to(port) == []


def test_logs_show_progress_but_no_secret_token_or_body(
    api: DevServer, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    api.api_faults.add(status=503, times=1)
    operator = pull(
        endpoint="/v1/link/items",
        data={"limit": 100},
        paginate=LinkHeaderPaginator(),
        output=str(tmp_path / "items.jsonl"),
        progress_interval=0,  # a line per page (the default: page 1, then every 5 s)
    )
    operator.execute({})
    logs = "".join(capfd.readouterr())
    token = operator.hook.get_token()
    assert "Page 1: 100 records (100 so far" in logs
    assert "Page 3: 50 records (250 so far" in logs
    assert "Pulled 250 records in 3 pages" in logs
    assert "Page 1: 503:" in logs and "on attempt 1; retrying in" in logs
    assert SECRET not in logs and token not in logs
    assert "item-1" not in logs and "Authorization" not in logs


@pytest.mark.parametrize("to_file", [True, False], ids=["output", "xcom"])
@pytest.mark.parametrize(("interval", "pages_logged"), [(0, [1, 2, 3, 4, 5]), (2.5, [1, 4])])
def test_progress_lines_follow_progress_interval(
    interval: float,
    pages_logged: list[int],
    to_file: bool,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each reading of the progress clock is one second later: with 2.5 s, pages 1 and 4 are
    logged; the default (5 s) would log page 1 only, an interval of 0 every page."""
    import itertools

    from airflow_provider_oauthcc.pull import engine as pull_module

    ticks = itertools.count(1000.0, 1.0)
    monkeypatch.setattr(pull_module, "monotonic", lambda: next(ticks))
    output = {"output": str(tmp_path / "items.jsonl")} if to_file else {}
    pull(
        endpoint="/v1/link/items",
        data={"limit": 50},
        paginate=LinkHeaderPaginator(),
        progress_interval=interval,
        **output,
    ).execute({})
    logs = "".join(capfd.readouterr())
    assert [int(n) for n in re.findall(r"Page (\d+): 50 records", logs)] == pages_logged


def test_loop_guard_stops_a_paginator_that_repeats_itself(tmp_path: Path) -> None:
    from airflow_provider_oauthcc.pull.engine import PaginationLoopError

    stuck = CursorPaginator(cursor_path="data.0.name", cursor_param="ignored")
    with pytest.raises(PaginationLoopError, match="page 2 again"):
        pull(
            endpoint="/v1/page/items",
            paginate=stuck,
            records_path="data",
            output=str(tmp_path / "x.jsonl"),
        ).execute({})
    assert list(tmp_path.iterdir()) == []
