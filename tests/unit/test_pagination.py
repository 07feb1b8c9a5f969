"""Paginators decide the next request from a page; these tests build pages from real
``requests.Response`` objects with the bodies and headers the styles use."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from airflow_provider_oauthcc.pull.pagination import (
    CursorPaginator,
    FunctionPaginator,
    LinkHeaderPaginator,
    NextUrlPaginator,
    OffsetPaginator,
    Page,
    PageNumberPaginator,
    PageRequest,
    json_get,
    select_records,
)

API = "https://api.example/v1/items"


def page_of(
    request: PageRequest, body: Any, records: list[Any] | None = None, **headers: str
) -> Page:
    response = requests.Response()
    response.status_code = 200
    response.url = request.url
    response._content = json.dumps(body).encode()
    response.headers.update(headers)
    page = Page(1, request, response)
    page.records = records if records is not None else select_records(body, None)
    return page


def test_link_header_next_is_followed_and_replaces_the_query() -> None:
    request = PageRequest(API, data={"limit": 2})
    page = page_of(
        request, [1, 2], Link='<https://api.example/v1/items?after=2&limit=2>; rel="next"'
    )
    following = LinkHeaderPaginator().next_request(page)
    assert following == PageRequest("https://api.example/v1/items?after=2&limit=2", data=None)


def test_link_header_without_next_is_the_last_page() -> None:
    page = page_of(PageRequest(API), [1], Link='<https://api.example/v1/items>; rel="first"')
    assert LinkHeaderPaginator().next_request(page) is None


def test_relative_next_urls_resolve_against_the_response_url() -> None:
    page = page_of(PageRequest(API), {"meta": {"next": "?page=2"}, "data": []}, records=[1])
    following = NextUrlPaginator("meta.next").next_request(page)
    assert following is not None and following.url == "https://api.example/v1/items?page=2"


def test_a_body_next_url_keeps_a_post_body() -> None:
    request = PageRequest(API, data={"q": "x"}, data_in_query=False)
    following = NextUrlPaginator().next_request(page_of(request, {"next": "/v1/items?c=9"}, [1]))
    assert following is not None and following.data == {"q": "x"}


@pytest.mark.parametrize("cursor", [None, "", False])
def test_cursor_missing_or_empty_ends_the_pull(cursor: Any) -> None:
    page = page_of(PageRequest(API), {"items": [1], "next_cursor": cursor}, [1])
    assert CursorPaginator().next_request(page) is None


def test_a_change_feed_ends_where_has_more_is_false_though_it_gives_a_cursor() -> None:
    paginator = CursorPaginator("next_cursor", "since", has_more_path="has_more")
    request = PageRequest(API, data={"since": "3"})
    last = page_of(request, {"records": [1], "next_cursor": "4", "has_more": False}, [1])
    assert paginator.next_request(last) is None
    more = paginator.next_request(
        page_of(request, {"records": [1], "next_cursor": "4", "has_more": True}, [1])
    )
    assert more is not None and more.data == {"since": "4"}


def test_cursor_is_sent_back_beside_the_other_parameters() -> None:
    request = PageRequest(API, data={"updated_since": "2024-01-01", "cursor": "old"})
    following = CursorPaginator("paging.after", "after").next_request(
        page_of(request, {"paging": {"after": "abc"}}, [1])
    )
    assert following is not None
    assert following.data == {"updated_since": "2024-01-01", "cursor": "old", "after": "abc"}


def test_page_number_counts_up_and_stops_at_total_pages() -> None:
    paginator = PageNumberPaginator(total_pages_path="total_pages", page_size=50)
    first = paginator.first_request(PageRequest(API, data={"q": "x"}))
    assert first.data == {"q": "x", "page": 1, "per_page": 50}
    second = paginator.next_request(page_of(first, {"total_pages": 2}, [1]))
    assert second is not None and second.param("page") == 2
    assert paginator.next_request(page_of(second, {"total_pages": 2}, [1])) is None


def test_page_number_from_zero_and_until_an_empty_page() -> None:
    paginator = PageNumberPaginator(page_param="p", first_page=0)
    first = paginator.first_request(PageRequest(API))
    assert first.data == {"p": 0}
    second = paginator.next_request(page_of(first, {}, [1, 2]))
    assert second is not None and second.param("p") == 1
    assert paginator.next_request(page_of(second, {}, [])) is None


def test_page_number_with_total_pages_counted_from_zero() -> None:
    paginator = PageNumberPaginator(first_page=0, total_pages_path="pages")
    last = PageRequest(API, data={"page": 2})
    assert paginator.next_request(page_of(last, {"pages": 3}, [1])) is None


def test_offset_moves_by_the_records_received_not_the_limit_asked() -> None:
    paginator = OffsetPaginator(limit=100)
    first = paginator.first_request(PageRequest(API))
    assert first.data == {"offset": 0, "limit": 100}
    capped = paginator.next_request(page_of(first, {}, list(range(25))))  # server caps at 25
    assert capped is not None and capped.data == {"offset": 25, "limit": 100}


def test_offset_stops_at_total_or_on_an_empty_page() -> None:
    paginator = OffsetPaginator(limit=10, total_path="meta.total")
    request = PageRequest(API, data={"offset": 20, "limit": 10})
    assert (
        paginator.next_request(page_of(request, {"meta": {"total": 30}}, list(range(10)))) is None
    )
    assert OffsetPaginator(limit=10).next_request(page_of(request, {}, [])) is None
    with pytest.raises(ValueError, match="limit must be >= 1"):
        OffsetPaginator(limit=0)


def test_function_paginator_calls_pagination_function_with_the_response() -> None:
    seen: list[requests.Response] = []

    def next_page(response: requests.Response) -> dict[str, Any] | None:
        seen.append(response)
        return {"data": {"page": 2}} if response.json()["page"] == 1 else None

    paginator = FunctionPaginator(next_page, lambda params: PageRequest(API, data=params["data"]))
    page = page_of(PageRequest(API), {"page": 1}, [1])
    assert paginator.next_request(page) == PageRequest(API, data={"page": 2})
    assert paginator.next_request(page_of(PageRequest(API), {"page": 2}, [1])) is None
    assert seen[0] is page.response


def test_string_data_cannot_take_parameters() -> None:
    with pytest.raises(TypeError, match="data is a string"):
        PageRequest(API, data="raw body").with_params(cursor="x")


def test_body_is_parsed_once_and_only_when_needed() -> None:
    response = requests.Response()
    response._content = b"not json"
    page = Page(1, PageRequest(API), response)
    assert LinkHeaderPaginator().next_request(page) is None  # no body needed: no error
    with pytest.raises(requests.exceptions.JSONDecodeError):
        _ = page.body


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a", {"b": [10, {"c": "deep"}]}),
        ("a.b.0", 10),
        ("a.b.1.c", "deep"),
        ("a.b.-1.c", "deep"),
        ("a.b.2", None),
        ("a.x", None),
        ("a.b.c", None),
    ],
)
def test_json_get_walks_dotted_paths(path: str, expected: Any) -> None:
    assert json_get({"a": {"b": [10, {"c": "deep"}]}}, path) == expected


def test_select_records_from_the_body_or_a_path() -> None:
    assert select_records([1, 2], None) == [1, 2]
    assert select_records({"data": {"rows": [3]}}, "data.rows") == [3]
    assert select_records({"data": None}, "data") == []


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        ({"items": [], "next": None}, None, "an object with keys: items, next, not a list"),
        (
            {"items": []},
            "data",
            "records_path 'data' is not in the response body; an object with keys: items",
        ),
        ({"data": {"id": 1}}, "data", "records_path 'data' is an object with keys: id"),
        ({"data": "x"}, "data", "is a JSON str, not a list"),
    ],
)
def test_select_records_explains_a_wrong_path(body: Any, path: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        select_records(body, path)


def test_select_records_error_shows_keys_never_values() -> None:
    with pytest.raises(ValueError) as info:
        select_records({"access_token_hint": "secret-value-123"}, "data")
    assert "secret-value-123" not in str(info.value)


def test_paginators_have_a_readable_repr() -> None:
    assert repr(CursorPaginator("c", "p")) == (
        "CursorPaginator(cursor_path='c', cursor_param='p', has_more_path=None)"
    )
