"""The deferrable OAuthHttpOperator's two halves around the sync pull.

Before deferring: the first page's request, as a trigger (only JSON-ready request data; the
token is fetched in the triggerer). After resuming: the triggerer's answer, or the error it
met raised as the provider exception the sync path raises, and a ``PageFetcher`` that serves
that answer as page 1, so that the pull goes on exactly as it does without deferral.
"""

from __future__ import annotations

from typing import Any, Protocol

import requests

from airflow_provider_oauthcc.pull.engine import PageFetcher
from airflow_provider_oauthcc.pull.pagination import PageRequest
from airflow_provider_oauthcc.triggers import events
from airflow_provider_oauthcc.triggers.oauth_http import OAuthHttpTrigger

# What the triggerer can send besides data: requests' other keywords (files, auth ...) cannot
# be stored in the metadata database.
_SENDABLE_REQUEST_KWARGS = frozenset({"json"})


class Log(Protocol):
    def error(self, msg: Any, /, *args: Any) -> Any: ...

    def info(self, msg: Any, /, *args: Any) -> Any: ...


def first_page_trigger(
    oauth_conn_id: str,
    method: str,
    first: PageRequest,
    *,
    extra_options: dict[str, Any],
    request_kwargs: dict[str, Any],
    retries: int,
    retry_max_wait: float,
    oauth_params: dict[str, Any] | None = None,
) -> OAuthHttpTrigger:
    """The trigger that sends ``first`` (the request of page 1, paginator applied)."""
    unsendable = sorted(set(request_kwargs) - _SENDABLE_REQUEST_KWARGS)
    if unsendable:
        raise ValueError(
            f"request_kwargs {unsendable} cannot be sent from the triggerer; only json can "
            "(or run the operator without deferrable=True)"
        )
    data = first.data if first.data is None or isinstance(first.data, str) else dict(first.data)
    return OAuthHttpTrigger(
        oauth_conn_id=oauth_conn_id,
        endpoint=first.url,
        method=method,
        data=data,
        headers=dict(first.headers),
        extra_options={**extra_options, **first.options},
        json=request_kwargs.get("json"),
        retries=retries,
        retry_max_wait=retry_max_wait,
        oauth_params=oauth_params,
    )


def first_page_answer(event: dict[str, Any], log: Log) -> requests.Response | None:
    """The answer the triggerer got; raises the error it met instead. None when the answer was
    too large to come back in the event: the worker then sends the request of page 1 itself."""
    if event.get("status") == events.TOO_LARGE:
        log.info(
            "The first answer (%s bytes) is larger than a trigger event holds (%s bytes); "
            "sending the request again from the worker",
            event.get("size"),
            event.get("limit"),
        )
        return None
    if event.get("status") != events.SUCCESS:
        error = events.decode_error(event.get("error") or {})
        log.error("The request failed in the triggerer: %s", error)
        raise error
    return events.decode_response(event["response"])


class AnsweredFirstPage(PageFetcher):
    """A PageFetcher whose page 1 was fetched (and retried, and checked) in the triggerer."""

    def __init__(self, *args: Any, first: requests.Response, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._first: requests.Response | None = first

    def fetch(self, request: PageRequest, page_number: int = 1) -> requests.Response:
        if page_number == 1 and self._first is not None:
            first, self._first = self._first, None
            return first
        return super().fetch(request, page_number)
