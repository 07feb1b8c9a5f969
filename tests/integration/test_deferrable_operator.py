"""OAuthHttpOperator(deferrable=True): the first request goes through the triggerer, and the
task resumes with the same XCom as the sync path, pagination and output included; errors
come back as the same exception types."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from airflow.providers.common.compat.sdk import AirflowException

from airflow_provider_oauthcc.auth.errors import (
    ApiError,
    ApiUnauthorizedError,
    OAuthCCConfigError,
    TokenRequestError,
)
from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
from airflow_provider_oauthcc.pull.pagination import (
    CursorPaginator,
    LinkHeaderPaginator,
    NextUrlPaginator,
    OffsetPaginator,
    PageNumberPaginator,
)
from devserver import DevServer
from tests.support.connections import conn_json
from tests.support.deferral import Deferrals, run_deferrable

from .conftest import API_SECRET, api_connection

pytestmark = pytest.mark.integration

SECRET = API_SECRET


@pytest.fixture(autouse=True)
def crm(api: DevServer, monkeypatch: pytest.MonkeyPatch) -> str:
    return api_connection(api, monkeypatch, records=250)


def operator(**kwargs: Any) -> OAuthHttpOperator:
    kwargs.setdefault("task_id", "pull")
    kwargs.setdefault("oauth_conn_id", "crm")
    return OAuthHttpOperator(**kwargs)


def next_page_function(response: requests.Response) -> dict[str, Any] | None:
    body = response.json()
    if body["page"] >= body["total_pages"]:
        return None
    return {"data": {"page": body["page"] + 1}}


CASES: dict[str, dict[str, Any]] = {
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
    "response_check": {
        "endpoint": "/v1/whoami",
        "response_check": lambda response: response.json()["client_id"] == "app",
    },
    "pagination_function": {
        "endpoint": "/v1/page/items",
        "data": {"per_page": 60},
        "pagination_function": next_page_function,
    },
    "post_form": {"endpoint": "/v1/echo", "method": "POST", "data": {"a": "1", "b": "two"}},
    "put_json": {"endpoint": "/v1/echo", "method": "PUT", "request_kwargs": {"json": {"x": [1]}}},
    "link": {
        "endpoint": "/v1/link/items",
        "data": {"limit": 40},
        "paginate": LinkHeaderPaginator(),
    },
    "next_url": {
        "endpoint": "/v1/next/items",
        "data": {"limit": 40},
        "paginate": NextUrlPaginator("next"),
        "records_path": "data",
    },
    "cursor": {
        "endpoint": "/v1/cursor/items",
        "data": {"limit": 40},
        "paginate": CursorPaginator("next_cursor", "cursor"),
        "records_path": "items",
    },
    "page_number": {  # its first request adds page and per_page: the triggerer sends those
        "endpoint": "/v1/page/items",
        "paginate": PageNumberPaginator(total_pages_path="total_pages", page_size=40),
        "records_path": "data",
    },
    "offset": {
        "endpoint": "/v1/offset/items",
        "paginate": OffsetPaginator(limit=40, total_path="total"),
        "records_path": "results",
        "max_pages": 3,
    },
}


@pytest.mark.parametrize("case", list(CASES))
def test_deferred_run_returns_what_the_sync_run_returns(case: str, api: DevServer) -> None:
    context: Any = {"ds": "2024-03-01"}
    expected = operator(**CASES[case]).execute(context)
    sync_requests = [(c.method, c.path, c.query_string) for c in api.stats.api_captures]
    api.stats.reset()

    deferrals = Deferrals()
    got = run_deferrable(operator(deferrable=True, **CASES[case]), context, deferrals)
    assert got == expected
    assert deferrals.count == 1 and deferrals.events[0]["status"] == "success"
    # The same requests: page 1 from the triggerer, the others from the worker, none twice.
    assert [(c.method, c.path, c.query_string) for c in api.stats.api_captures] == sync_requests
    ((_, stored),) = deferrals.stored
    assert SECRET not in json.dumps(stored)
    for capture in api.stats.api_captures:
        assert capture.headers["Authorization"].split()[1] not in json.dumps(stored)


def test_output_summary_and_file_match_the_sync_run(tmp_path: Path) -> None:
    kwargs = {
        "endpoint": "/v1/link/items",
        "data": {"limit": 40},
        "paginate": LinkHeaderPaginator(),
    }
    sync = operator(output=(tmp_path / "sync.jsonl").as_uri(), **kwargs).execute({})
    deferred = run_deferrable(
        operator(deferrable=True, output=(tmp_path / "deferred.jsonl").as_uri(), **kwargs), {}
    )
    assert (tmp_path / "sync.jsonl").read_bytes() == (tmp_path / "deferred.jsonl").read_bytes()
    for key in ("records", "pages", "bytes", "truncated", "retries"):
        assert deferred[key] == sync[key], key
    assert deferred["records"] == 250 and deferred["pages"] == 7


def test_the_triggerer_retries_the_first_request(api: DevServer) -> None:
    api.api_faults.add(status=503, times=2, retry_after=0)
    text = run_deferrable(operator(endpoint="/v1/whoami", deferrable=True), {})
    assert json.loads(text)["client_id"] == "app"
    assert api.stats.api_requests_by_status == {503: 2, 200: 1}


def test_failed_response_check_fails_as_in_the_sync_run() -> None:
    task = operator(endpoint="/v1/whoami", response_check=lambda r: False, deferrable=True)
    with pytest.raises(AirflowException, match="Response check returned False"):
        run_deferrable(task, {})


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        ({"status": 404}, ApiError, 404),
        ({"status": 500, "every": 1}, ApiError, 500),
        ({"status": 401, "times": 2}, ApiUnauthorizedError, 401),
    ],
)
def test_api_errors_in_the_triggerer_fail_the_task_with_the_same_type(
    api: DevServer, fault: dict[str, Any], error: type[ApiError], status: int
) -> None:
    api.api_faults.add(**fault)
    task = operator(endpoint="/v1/whoami", deferrable=True, page_retries=1, retry_max_wait=0.05)
    deferrals = Deferrals()
    with pytest.raises(error) as caught:
        run_deferrable(task, {}, deferrals)
    assert caught.value.status == status
    assert deferrals.events[0]["status"] == "error"
    api.api_faults.clear()
    with pytest.raises(error):  # the sync path raises the same type
        api.api_faults.add(**fault)
        operator(endpoint="/v1/whoami", page_retries=1, retry_max_wait=0.05).execute({})


def test_token_refusal_in_the_triggerer_is_a_token_request_error(
    api: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = conn_json(api.api_url, "app", "wrong-secret-value", auth_url=api.token_url)
    monkeypatch.setenv("AIRFLOW_CONN_CRM", value)
    with pytest.raises(TokenRequestError, match="invalid_client") as caught:
        run_deferrable(operator(endpoint="/v1/whoami", deferrable=True), {})
    assert caught.value.error == "invalid_client"


def test_a_misconfigured_connection_fails_before_deferring(
    api: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CRM", conn_json(api.api_url, "app", SECRET))
    deferrals = Deferrals()
    with pytest.raises(OAuthCCConfigError, match="auth_url"):
        run_deferrable(operator(endpoint="/v1/whoami", deferrable=True), {}, deferrals)
    assert deferrals.count == 0


def test_request_kwargs_the_triggerer_cannot_send_are_refused() -> None:
    task = operator(
        endpoint="/v1/echo", method="POST", request_kwargs={"files": {"f": b"x"}}, deferrable=True
    )
    with pytest.raises(ValueError, match=r"request_kwargs \['files'\] cannot be sent"):
        run_deferrable(task, {})
