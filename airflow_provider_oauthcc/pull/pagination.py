"""Paginators: how to get from one page of an API to the next.

A paginator is a small, stateless object with two methods: ``first_request`` (adjust the
request of page 1, e.g. add ``page=1``) and ``next_request`` (the request of the page after
``page``, or ``None`` when ``page`` was the last one). Where the next page comes from is all a
paginator knows: fetching, retries and writing records are someone else's job.

    LinkHeaderPaginator()                               Link: <...>; rel="next"
    NextUrlPaginator(next_url_path="next")              {"data": [...], "next": "https://..."}
    CursorPaginator(cursor_path="next_cursor", cursor_param="cursor")
                                                        {"items": [...], "next_cursor": "abc"}
    PageNumberPaginator(page_param="page", total_pages_path="total_pages")
    OffsetPaginator(limit=100, offset_param="offset", limit_param="limit", total_path="total")

Paths into a JSON body are dotted keys (``"meta.next"``); a number selects a list item.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

if TYPE_CHECKING:
    import requests

_MISSING = object()


@dataclass(frozen=True)
class PageRequest:
    """What to send for one page.

    ``data`` is what ``HttpHook.run`` calls data: query parameters for GET (``data_in_query``),
    the body for other methods. ``options`` override the hook's ``extra_options`` (timeout ...)
    for this page only.
    """

    url: str
    data: Mapping[str, Any] | str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    data_in_query: bool = True

    def with_params(self, **params: Any) -> PageRequest:
        """This request with some parameters added or replaced."""
        if isinstance(self.data, str):
            raise TypeError(
                f"cannot set {', '.join(params)} on a request whose data is a string; "
                "pass data as a dict to paginate with parameters"
            )
        return replace(self, data={**(self.data or {}), **params})

    def param(self, name: str, default: Any = None) -> Any:
        if isinstance(self.data, Mapping):
            return self.data.get(name, default)
        return default

    def follow(self, url: str) -> PageRequest:
        """The request of a next-page URL the API gave, which carries the query already."""
        # Built directly: dataclasses.replace costs more than the rest of a page's bookkeeping.
        data = None if self.data_in_query else self.data
        return PageRequest(url, data, self.headers, self.options, self.data_in_query)


class Page:
    """One fetched page. ``body`` is parsed on first use only (orjson when installed)."""

    def __init__(self, number: int, request: PageRequest, response: requests.Response) -> None:
        self.number = number
        self.request = request
        self.response = response
        self.records: Sequence[Any] = ()

    @cached_property
    def body(self) -> Any:
        from airflow_provider_oauthcc.pull.json_codec import loads

        try:
            return loads(self.response.content)
        except ValueError:
            return self.response.json()  # requests' reading (another charset) or its error


class Paginator(ABC):
    """How one API pages. Subclasses are stateless: one instance may serve many pulls."""

    def first_request(self, request: PageRequest) -> PageRequest:
        return request

    @abstractmethod
    def next_request(self, page: Page) -> PageRequest | None:
        """The request of the page after ``page``; None when ``page`` is the last one."""

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class LinkHeaderPaginator(Paginator):
    """Follows the RFC 8288 ``Link`` header's ``rel="next"`` URL (GitHub, many REST APIs)."""

    def __init__(self, rel: str = "next") -> None:
        self.rel = rel

    def next_request(self, page: Page) -> PageRequest | None:
        link = page.response.links.get(self.rel)
        if not link or not link.get("url"):
            return None
        return page.request.follow(urljoin(page.response.url, link["url"]))


class NextUrlPaginator(Paginator):
    """Follows a next-page URL (absolute or relative) found in the JSON body."""

    def __init__(self, next_url_path: str = "next") -> None:
        self.next_url_path = next_url_path

    def next_request(self, page: Page) -> PageRequest | None:
        url = json_get(page.body, self.next_url_path)
        if not url:
            return None
        return page.request.follow(urljoin(page.response.url, str(url)))


class CursorPaginator(Paginator):
    """Sends the cursor found in the JSON body back as a request parameter.

    The last page is the one without a cursor or, with ``has_more_path``, the one whose flag
    there is false (change feeds give the cursor of their end on every page, for the next
    pull to start from).
    """

    def __init__(
        self,
        cursor_path: str = "next_cursor",
        cursor_param: str = "cursor",
        has_more_path: str | None = None,
    ) -> None:
        self.cursor_path = cursor_path
        self.cursor_param = cursor_param
        self.has_more_path = has_more_path

    def next_request(self, page: Page) -> PageRequest | None:
        if self.has_more_path is not None and not json_get(page.body, self.has_more_path):
            return None
        cursor = json_get(page.body, self.cursor_path)
        if cursor is None or cursor == "" or cursor is False:
            return None
        return page.request.with_params(**{self.cursor_param: cursor})


class PageNumberPaginator(Paginator):
    """Counts pages up from ``first_page``.

    Stops after the page numbered by the body's total-pages field when ``total_pages_path`` is
    set, and in any case on an empty page. ``page_size`` (sent as ``page_size_param``) is
    optional: the API's default applies without it.
    """

    def __init__(
        self,
        page_param: str = "page",
        first_page: int = 1,
        total_pages_path: str | None = None,
        page_size: int | None = None,
        page_size_param: str = "per_page",
    ) -> None:
        self.page_param = page_param
        self.first_page = first_page
        self.total_pages_path = total_pages_path
        self.page_size = page_size
        self.page_size_param = page_size_param

    def first_request(self, request: PageRequest) -> PageRequest:
        params: dict[str, Any] = {self.page_param: request.param(self.page_param, self.first_page)}
        if self.page_size is not None:
            params[self.page_size_param] = self.page_size
        return request.with_params(**params)

    def next_request(self, page: Page) -> PageRequest | None:
        if not page.records:
            return None
        current = int(page.request.param(self.page_param, self.first_page))
        if self.total_pages_path is not None:
            total = json_get(page.body, self.total_pages_path)
            if total is not None and current >= self.first_page + int(total) - 1:
                return None
        return page.request.with_params(**{self.page_param: current + 1})


class OffsetPaginator(Paginator):
    """Moves ``offset`` on by the records received, ``limit`` at a time.

    Stops when the offset reaches the body's total (``total_path``) or on an empty page. A
    short page alone does not stop it: APIs cap ``limit`` silently.
    """

    def __init__(
        self,
        limit: int = 100,
        offset_param: str = "offset",
        limit_param: str = "limit",
        total_path: str | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self.offset_param = offset_param
        self.limit_param = limit_param
        self.total_path = total_path

    def first_request(self, request: PageRequest) -> PageRequest:
        offset = request.param(self.offset_param, 0)
        return request.with_params(**{self.offset_param: offset, self.limit_param: self.limit})

    def next_request(self, page: Page) -> PageRequest | None:
        if not page.records:
            return None
        offset = int(page.request.param(self.offset_param, 0)) + len(page.records)
        if self.total_path is not None:
            total = json_get(page.body, self.total_path)
            if total is not None and offset >= int(total):
                return None
        return page.request.with_params(**{self.offset_param: offset})


class FunctionPaginator(Paginator):
    """HttpOperator's ``pagination_function``: called with each response, it returns the
    next page's parameters (endpoint, data, headers, extra_options) or a falsy value."""

    def __init__(
        self,
        function: Callable[[requests.Response], Any],
        to_request: Callable[[dict[str, Any]], PageRequest],
    ) -> None:
        self.function = function
        self.to_request = to_request

    def next_request(self, page: Page) -> PageRequest | None:
        params = self.function(page.response)
        return self.to_request(params) if params else None


def json_get(body: Any, path: str, default: Any = None) -> Any:
    """The value at a dotted ``path`` in a parsed JSON body, or ``default``."""
    value = body
    for key in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(key, _MISSING)
        elif isinstance(value, list) and key.lstrip("-").isdigit():
            index = int(key)
            value = value[index] if -len(value) <= index < len(value) else _MISSING
        else:
            value = _MISSING
        if value is _MISSING:
            return default
    return value


def select_records(body: Any, records_path: str | None) -> list[Any]:
    """The records of one page: the list at ``records_path``, or the body itself.

    A missing path is an error that names the keys there are (never their values); a null
    value means no records.
    """
    records = body if records_path is None else json_get(body, records_path, _MISSING)
    if records is _MISSING:
        raise ValueError(
            f"records_path {records_path!r} is not in the response body; {_shape(body)}"
        )
    if records is None:
        return []
    if not isinstance(records, list):
        where = "the response body" if records_path is None else f"records_path {records_path!r}"
        raise ValueError(
            f"{where} is {_shape(records)}, not a list of records; "
            "set records_path to where the list is (e.g. 'data', 'items', 'results')"
        )
    return records


def _shape(value: Any) -> str:
    if isinstance(value, Mapping):
        keys = ", ".join(sorted(str(k) for k in value)[:20])
        return f"an object with keys: {keys}" if keys else "an empty object"
    return f"a JSON {type(value).__name__}"
