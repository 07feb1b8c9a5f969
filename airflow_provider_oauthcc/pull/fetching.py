"""Setting up one pull's ``PageFetcher``: its retry policy, the user's ``retry_args`` merged
with it, and where its pages may come from. The operator and the hook's pull API both build
their fetcher here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import requests

from airflow_provider_oauthcc.auth.egress import EgressPolicy
from airflow_provider_oauthcc.pull.engine import Log, PageFetcher
from airflow_provider_oauthcc.pull.retry import IDEMPOTENT_METHODS, RetryPolicy, user_retrying


def pull_egress(
    base_url: str | None,
    first_url: str,
    allowed_origins: Sequence[str] = (),
    *,
    allow_insecure_http: bool = False,
) -> EgressPolicy:
    """The API's origin (the connection's host, else the first request's), plus
    ``allowed_origins`` for pages fetched with their URL only."""
    return EgressPolicy(
        base_url or first_url, allowed_origins, allow_insecure_http=allow_insecure_http
    )


def page_fetcher(
    session: requests.Session,
    *,
    method: str,
    options: Mapping[str, Any],
    check_response: Callable[[requests.Response], None],
    egress: EgressPolicy,
    retries: int = 5,
    retry_max_wait: float = 60.0,
    retry_args: Mapping[str, Any] | None = None,
    request_kwargs: Mapping[str, Any] | None = None,
    log: Log | None = None,
    first_answer: requests.Response | None = None,
) -> PageFetcher:
    """A fetcher for one pull through ``session``; the session's egress gate learns ``egress``.

    :param retries: retries of one request after its first attempt (429, 503, 5xx, lost
        connections; only 429, 503 and failures to connect for a non-idempotent method).
    :param retry_max_wait: upper bound in seconds of any wait, a Retry-After included.
    :param retry_args: tenacity arguments (HttpOperator's ``retry_args``) used instead of
        ``retries``, merged with the Retry-After handling (see ``retry.user_retrying``).
    :param first_answer: page 1's answer, already fetched (by the triggerer).
    """
    if retries < 0 or retry_max_wait < 0:
        raise ValueError("retries and retry_max_wait must be >= 0")
    policy = RetryPolicy(
        retries=retries, max_wait=retry_max_wait, idempotent=method.upper() in IDEMPOTENT_METHODS
    )
    if hasattr(session, "egress"):
        session.egress = egress
    fetcher_class: type[PageFetcher] = PageFetcher
    extra: dict[str, Any] = {}
    if first_answer is not None:
        from airflow_provider_oauthcc.pull.deferred import AnsweredFirstPage

        fetcher_class, extra = AnsweredFirstPage, {"first": first_answer}
    fetcher = fetcher_class(
        session,
        method=method,
        options=options,
        check_response=check_response,
        policy=policy,
        request_kwargs=request_kwargs,
        egress=egress,
        log=log,
        **extra,
    )
    if retry_args:
        # Built once the fetcher exists: its retry log line (and count) comes first.
        fetcher.use_retrying(
            user_retrying(
                dict(retry_args),
                max_wait=retry_max_wait,
                before_sleep=fetcher.log_retry,
                reraise=True,
            )
        )
    return fetcher
