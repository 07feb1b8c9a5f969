"""Pagination stays on the API's origin (issue 10 item 3).

A hostile API (a canned server) points its next page at a second local server on another port
that records everything it receives. By default the pull stops before anything is sent there,
with an error naming that origin; with ``allowed_origins`` the page is fetched, but with the
URL only: no token, no connection ``headers`` extra, no task headers, no request body.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_oauthcc.auth.errors import OriginNotAllowedError
from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
from airflow_provider_oauthcc.pull.pagination import (
    LinkHeaderPaginator,
    NextUrlPaginator,
    Page,
    PageRequest,
    Paginator,
)
from devserver import DevServer
from tests.support.canned_http import Canned, CannedServer
from tests.support.connections import airflow_conn, conn_json

pytestmark = pytest.mark.integration

SECRET = "s3cret-Value-origin-7311"
CONN_HEADER = "conn-header-value-5521"
TASK_HEADER = "task-header-value-8830"
BODY_MARK = "body-mark-6644"


@pytest.fixture(scope="module")
def auth() -> Iterator[DevServer]:
    with DevServer() as srv:
        srv.add_client("app", secret=SECRET, scope="read")
        yield srv


@pytest.fixture
def api() -> Iterator[CannedServer]:
    server = CannedServer()
    yield server
    server.close()


@pytest.fixture
def elsewhere() -> Iterator[CannedServer]:
    """The other origin: a second loopback server that records what reaches it."""
    server = CannedServer()
    yield server
    server.close()


@pytest.fixture
def conn(auth: DevServer, api: CannedServer) -> Iterator[str]:
    value = conn_json(
        api.url,
        "app",
        SECRET,
        auth_url=auth.token_url,
        scope="read",
        headers={"X-Conn-Key": CONN_HEADER},
    )
    with airflow_conn("hostile_api", value):
        yield "hostile_api"


def page_one(api: CannedServer, next_url: str | None = None, link: str | None = None) -> None:
    headers = {"Content-Type": "application/json"}
    if link is not None:
        headers["Link"] = f'<{link}>; rel="next"'
    body = {"data": [{"id": 1}], "next": next_url}
    api.add(Canned(200, json.dumps(body), headers))


def last_page(server: CannedServer) -> None:
    body = {"data": [{"id": 2}], "next": None}
    server.add(Canned(200, json.dumps(body), {"Content-Type": "application/json"}))


def operator(conn: str, paginate: Paginator, **kwargs: Any) -> OAuthHttpOperator:
    kwargs.setdefault("method", "POST")
    kwargs.setdefault("data", {"mark": BODY_MARK})
    return OAuthHttpOperator(
        task_id="pull",
        oauth_conn_id=conn,
        endpoint="/v1/search",
        headers={"X-Task": TASK_HEADER},
        paginate=paginate,
        records_path="data",
        page_retries=0,
        **kwargs,
    )


def assert_api_got_everything(api: CannedServer) -> None:
    """The API's own origin gets the token, the headers and the body: the test can tell."""
    first = api.requests[0]
    assert first.headers["Authorization"].startswith("Bearer ")
    assert first.headers["X-Conn-Key"] == CONN_HEADER
    assert first.headers["X-Task"] == TASK_HEADER
    assert BODY_MARK in first.body.decode()


@pytest.mark.parametrize("style", ["body_absolute", "body_scheme_relative", "link_header"])
def test_a_next_link_to_another_origin_stops_the_pull_before_any_request(
    conn: str, api: CannedServer, elsewhere: CannedServer, style: str
) -> None:
    port = elsewhere.url.rsplit(":", 1)[1]
    if style == "body_absolute":
        page_one(api, next_url=f"{elsewhere.url}/latest/meta-data?page=2")
        paginate: Paginator = NextUrlPaginator("next")
    elif style == "body_scheme_relative":
        page_one(api, next_url=f"//127.0.0.1:{port}/latest/meta-data")
        paginate = NextUrlPaginator("next")
    else:
        page_one(api, link=f"{elsewhere.url}/latest/meta-data?page=2")
        paginate = LinkHeaderPaginator()
    last_page(elsewhere)

    with pytest.raises(OriginNotAllowedError) as caught:
        operator(conn, paginate).execute({})

    assert elsewhere.requests == []
    message = str(caught.value)
    assert f"http://127.0.0.1:{port}" in message and "allowed_origins" in message
    assert "Page 2" in message
    assert isinstance(caught.value, AirflowFailException)  # no retry can fix it
    assert_api_got_everything(api)


def test_an_allowed_origin_gets_the_url_and_nothing_of_the_connection(
    conn: str, api: CannedServer, elsewhere: CannedServer
) -> None:
    page_one(api, next_url=f"{elsewhere.url}/export/part-2?sig=abc")
    last_page(elsewhere)

    records = operator(conn, NextUrlPaginator("next"), allowed_origins=[elsewhere.url]).execute({})

    assert records == [{"id": 1}, {"id": 2}]
    assert_api_got_everything(api)
    [seen] = elsewhere.requests
    assert seen.path == "/export/part-2?sig=abc"
    headers = {k.lower(): v for k, v in seen.headers.items()}
    assert "authorization" not in headers
    assert "x-conn-key" not in headers and CONN_HEADER not in json.dumps(headers)
    assert "x-task" not in headers and TASK_HEADER not in json.dumps(headers)
    assert seen.body == b""


def test_an_allowed_origin_does_not_open_the_way_to_a_third(
    conn: str, api: CannedServer, elsewhere: CannedServer
) -> None:
    third = CannedServer()
    try:
        page_one(api, link=f"{elsewhere.url}/part-2")
        elsewhere.add(
            Canned(
                200,
                json.dumps({"data": [{"id": 2}]}),
                {"Content-Type": "application/json", "Link": f'<{third.url}/part-3>; rel="next"'},
            )
        )
        with pytest.raises(OriginNotAllowedError, match=third.url.replace(".", r"\.")):
            operator(
                conn,
                LinkHeaderPaginator(),
                method="GET",
                data=None,
                allowed_origins=[elsewhere.url],
            ).execute({})
        assert third.requests == []
        assert len(elsewhere.requests) == 1
    finally:
        third.close()


class _HostilePaginator(Paginator):
    """A user's own paginator that builds a full request for another origin."""

    def __init__(self, url: str) -> None:
        self.url = url

    def next_request(self, page: Page) -> PageRequest | None:
        if page.number > 1:
            return None
        return PageRequest(
            url=self.url,
            data={"mark": BODY_MARK},
            headers={"X-Task": TASK_HEADER},
            data_in_query=False,
        )


def test_any_paginator_is_held_to_the_origin(
    conn: str, api: CannedServer, elsewhere: CannedServer
) -> None:
    page_one(api)
    last_page(elsewhere)
    with pytest.raises(OriginNotAllowedError):
        operator(conn, _HostilePaginator(f"{elsewhere.url}/x")).execute({})
    assert elsewhere.requests == []

    page_one(api)
    task = operator(conn, _HostilePaginator(f"{elsewhere.url}/x"), allowed_origins=[elsewhere.url])
    assert task.execute({}) == [{"id": 1}, {"id": 2}]
    [seen] = elsewhere.requests
    assert "x-task" not in {k.lower() for k in seen.headers} and seen.body == b""


@pytest.mark.parametrize(
    ("allowed", "error"),
    [
        (["cdn.example.com"], "scheme"),
        (["ftp://cdn.example.com"], "scheme"),
        (["https://cdn.example.com/exports"], "path"),
        ("https://cdn.example.com", "list"),
    ],
)
def test_allowed_origins_are_checked_when_the_dag_is_parsed(allowed: Any, error: str) -> None:
    with pytest.raises((TypeError, ValueError), match=error):
        OAuthHttpOperator(task_id="t", endpoint="/x", allowed_origins=allowed)


# -- redirects: the same rule for a Location the API answers with --------------------------------


def test_a_redirect_to_another_origin_is_not_followed_by_default(
    conn: str, api: CannedServer, elsewhere: CannedServer
) -> None:
    api.add(Canned(307, "", {"Location": f"{elsewhere.url}/latest/meta-data"}))
    last_page(elsewhere)
    with pytest.raises(OriginNotAllowedError, match=r"Page 1 redirects to http://127\.0\.0\.1"):
        operator(conn, NextUrlPaginator("next")).execute({})
    assert elsewhere.requests == []
    assert_api_got_everything(api)


def test_a_redirect_to_an_allowed_origin_gets_the_url_only(
    conn: str, api: CannedServer, elsewhere: CannedServer
) -> None:
    api.add(Canned(307, "", {"Location": f"{elsewhere.url}/export/part-1?sig=abc"}))
    last_page(elsewhere)
    task = operator(conn, NextUrlPaginator("next"), allowed_origins=[elsewhere.url])
    assert task.execute({}) == [{"id": 2}]
    [seen] = elsewhere.requests
    assert seen.path == "/export/part-1?sig=abc"
    assert "authorization" not in {k.lower() for k in seen.headers}
    assert "x-conn-key" not in {k.lower() for k in seen.headers} and seen.body == b""


def test_a_redirect_within_the_api_is_followed_as_before(
    conn: str, api: CannedServer, elsewhere: CannedServer
) -> None:
    api.add(Canned(302, "", {"Location": "/v1/search-results"}))
    page_one(api)
    assert operator(conn, NextUrlPaginator("next"), method="GET").execute({}) == [{"id": 1}]
    assert [seen.path.split("?")[0] for seen in api.requests] == [
        "/v1/search",
        "/v1/search-results",
    ]
    assert api.requests[1].headers["X-Conn-Key"] == CONN_HEADER
    assert elsewhere.requests == []
