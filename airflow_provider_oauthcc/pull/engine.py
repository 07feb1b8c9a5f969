"""A paginated pull over one ``requests.Session``: fetch a page, retry that page, go on.

``PageFetcher`` sends one page's request the way ``HttpHook.run`` does (data as query
parameters for GET, as the body otherwise; the hook's extra options) with a retry policy per
page, and only to the API's origin (or, with the URL alone, to an origin the task allowed).
``PagePull`` walks a paginator from the first page to the last, one page in memory at a time.
``Progress`` writes the progress lines a person follows in the task log, one every few seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from time import monotonic  # a module attribute: tests set the clock
from typing import Any, Protocol

import requests
import tenacity

from airflow_provider_oauthcc.auth.egress import EgressPolicy, shown, target
from airflow_provider_oauthcc.auth.errors import ApiConnectionError, OriginNotAllowedError
from airflow_provider_oauthcc.auth.gated_session import AllowedOriginRedirect
from airflow_provider_oauthcc.pull.pagination import Page, PageRequest, Paginator
from airflow_provider_oauthcc.pull.retry import (
    RetryableStatusError,
    RetryPolicy,
    describe_failure,
    retry_after_seconds,
)


class Log(Protocol):
    """The part of a logger this module uses (stdlib and Airflow's structlog loggers)."""

    def debug(self, msg: Any, /, *args: Any) -> Any: ...
    def info(self, msg: Any, /, *args: Any) -> Any: ...
    def warning(self, msg: Any, /, *args: Any) -> Any: ...
    def error(self, msg: Any, /, *args: Any) -> Any: ...


class PaginationLoopError(RuntimeError):
    """The paginator asked for the page it just got: following it would never end."""


class PullStopped(RuntimeError):
    """The pull was stopped (the task is being killed) before this page was sent."""


class PageFetcher:
    """Sends page requests through one session and retries each page on its own.

    :param options: the hook's merged extra options (timeout, allow_redirects, check_response).
    :param check_response: raises for a failed response (the hook's ``check_response``).
    :param retrying: a tenacity ``Retrying`` replacing ``policy`` (HttpOperator's retry_args).
    :param egress: where requests may go; a request for an origin it does not allow raises
        ``OriginNotAllowedError`` before anything is sent. None: the session's own policy
        (a ``GatedSession``), else the first request's origin.
    """

    def __init__(
        self,
        session: requests.Session,
        *,
        method: str,
        options: Mapping[str, Any],
        check_response: Callable[[requests.Response], None],
        policy: RetryPolicy,
        retrying: tenacity.Retrying | None = None,
        request_kwargs: Mapping[str, Any] | None = None,
        egress: EgressPolicy | None = None,
        log: Log | None = None,
    ) -> None:
        self.session = session
        self.method = method.upper()
        self.options = dict(options)
        self.check_response = check_response
        self.policy = policy
        self.request_kwargs = dict(request_kwargs or {})
        self.log = log or logging.getLogger(__name__)
        self.egress = egress or getattr(session, "egress", None)
        self.retries = 0
        self.closed = False
        self._page_number = 0
        self._streaming: requests.Response | None = None  # opened by ``open``, body unread
        self._retrying = retrying or policy.retrying(self.log_retry)
        self._environments: dict[tuple[str, str, bool], dict[str, Any]] = {}
        # Decided once per pull: a DEBUG line per page costs its formatting even when discarded.
        self._logs_sends = _enabled(self.log, logging.DEBUG)

    def fetch(self, request: PageRequest, page_number: int = 1) -> requests.Response:
        """The response for ``request``, retried as the policy allows.

        Once the retries are used up, a retryable status is raised as an ``ApiError`` naming
        the page and the attempts, an answer cut off mid-body as an ``ApiConnectionError``; a
        timeout or lost connection is raised as it is, after an error line in the log that
        says the same.
        """
        return self._fetch(request, page_number, read_body=True)

    def open(self, request: PageRequest, page_number: int = 1) -> requests.Response:
        """As ``fetch``, with the same egress rule, checks and retries, but the body of a
        successful answer is left unread: the caller streams it (``response.raw``) and closes
        the response. An answer cut off mid-body is then the caller's to retry."""
        response = self._fetch(request, page_number, read_body=False)
        self._streaming = response
        return response

    def _fetch(
        self, request: PageRequest, page_number: int, *, read_body: bool
    ) -> requests.Response:
        self._page_number = page_number
        if self.closed:
            raise PullStopped(f"Page {page_number}: not sent, the pull was stopped")
        if self.egress is None:
            self.egress = EgressPolicy(request.url)
        foreign = self.egress.is_foreign(request.url, page_number)
        try:
            response: requests.Response = self._retrying(self._send, request, foreign, read_body)
        except RetryableStatusError as exc:
            raise exc.gave_up(page_number, self._attempts()) from None
        except requests.exceptions.RequestException as exc:
            attempts = self._attempts()
            gave_up = f"gave up after {attempts} attempt{'s' if attempts != 1 else ''}"
            if attempts > 1:
                self.log.error("Page %d: %s; %s", page_number, describe_failure(exc), gave_up)
            if isinstance(exc, _CUT_OFF):
                raise ApiConnectionError(
                    f"Page {page_number}: the connection broke while the API was sending its "
                    f"answer ({describe_failure(exc)}: {_first_reason(exc)}); {gave_up}"
                ) from exc
            raise
        return response

    def _attempts(self) -> int:
        """Attempts made by the last ``fetch`` (tenacity keeps them per thread)."""
        return int(self._retrying.statistics.get("attempt_number", 1))

    def _send(
        self, request: PageRequest, foreign: bool = False, read_body: bool = True
    ) -> requests.Response:
        options = {**self.options, **request.options} if request.options else self.options
        if foreign:
            response = self._send_foreign(request.url, self.method, options)
        else:
            response = self._send_to_api(request, options, stream=not read_body)
        # Read the body here, inside the retry, even when streaming: an answer cut off
        # mid-body is then retried like a lost connection, not met later while parsing.
        # Unless the caller streams it: then only a failed answer's body is read.
        if read_body or not response.ok:
            _ = response.content
        if options.get("check_response", True) and not response.ok:
            if self.policy.should_retry_status(response.status_code):
                retry_after = retry_after_seconds(response)
                response.close()
                raise RetryableStatusError(response, retry_after)
            self.check_response(response)
        return response

    def _send_to_api(
        self, request: PageRequest, options: Mapping[str, Any], *, stream: bool = False
    ) -> requests.Response:
        """Through the session (token, headers, body). Redirects within the API's origin are
        followed as requests follows them; the session's gate stops one to another origin
        before it is sent, and one to an allowed other origin is fetched as a foreign page."""
        prepared = self.session.prepare_request(self._request(request))
        settings = self._environment(prepared.url or "", foreign=False)
        if stream:
            settings = {**settings, "stream": True}
        if self._logs_sends:
            self.log.debug("Sending %s to %s", self.method, shown(prepared.url or ""))
        try:
            return self.session.send(
                prepared,
                timeout=options.get("timeout"),
                allow_redirects=options.get("allow_redirects", True),
                **settings,
            )
        except AllowedOriginRedirect as redirect:
            return self._send_foreign(redirect.url, redirect.method, options)
        except OriginNotAllowedError as refused:
            refused.args = (str(refused).replace("The request", f"Page {self._page_number}", 1),)
            raise

    def _send_foreign(self, url: str, method: str, options: Mapping[str, Any]) -> requests.Response:
        """``method`` on the bare URL, straight through the transport adapter: no session
        headers, auth, cookies, client certificate, body or task headers, and no redirects
        followed."""
        prepared = requests.Request(method, url).prepare()
        settings = self._environment(prepared.url or "", foreign=True)
        self.log.info(
            "Page %d: fetching it from %s, an allowed other origin (URL only)",
            self._page_number,
            shown(url),
        )
        adapter = self.session.get_adapter(prepared.url or "")
        response = adapter.send(
            prepared,
            timeout=options.get("timeout"),
            stream=True,
            verify=settings["verify"] if settings["verify"] is not None else True,
            proxies=settings["proxies"],
            cert=None,
        )
        if response.is_redirect:
            response.close()
            raise OriginNotAllowedError(
                f"Page {self._page_number} on {shown(url)} answered with a redirect "
                f"(HTTP {response.status_code}); redirects from other origins are not followed",
                origin=shown(url),
            )
        return response

    def _environment(self, url: str, *, foreign: bool) -> dict[str, Any]:
        """The session's proxies, verify, cert and stream merged with the environment's
        (``HTTPS_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE`` ...), as ``Session.request``
        merges them, but once per origin and pull rather than on every request."""
        where = target(url)
        key = (where.origin, "", foreign)
        settings = self._environments.get(key)
        if settings is None:
            settings = dict(
                self.session.merge_environment_settings(
                    url,
                    proxies=self.session.proxies,
                    stream=True if foreign else self.session.stream,
                    verify=self.session.verify,
                    cert=None if foreign else self.session.cert,
                )
            )
            egress = self.egress
            insecure_ok = egress.allow_insecure_http if egress is not None else False
            if where.goes_direct(allow_insecure_http=insecure_ok):
                settings["proxies"] = {}  # never through a proxy (see auth.egress)
            self._environments[key] = settings
        return settings

    def close(self) -> None:
        """Stop: no further page is sent, and the session's sockets are closed now."""
        self.closed = True
        streaming, self._streaming = self._streaming, None
        if streaming is not None:  # its connection is not in the pool: close it too
            streaming.close()
        close_session(self.session)

    def _request(self, request: PageRequest) -> requests.Request:
        headers = dict(request.headers)
        if self.method == "GET":
            return requests.Request(
                self.method,
                request.url,
                params=request.data,
                headers=headers,
                **self.request_kwargs,
            )
        if self.method == "HEAD":
            return requests.Request(
                self.method, request.url, headers=headers, **self.request_kwargs
            )
        return requests.Request(
            self.method, request.url, data=request.data, headers=headers, **self.request_kwargs
        )

    def use_retrying(self, retrying: tenacity.Retrying) -> None:
        """Retry each page as ``retrying`` says (give it ``before_sleep=self.log_retry`` to
        keep the retry log lines and count)."""
        self._retrying = retrying

    def log_retry(self, state: tenacity.RetryCallState) -> None:
        """The log line before a retry (and its count in ``retries``)."""
        self.retries += 1
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        self.log.warning(
            "Page %d: %s on attempt %d; retrying in %.1f s",
            self._page_number,
            describe_failure(error),
            state.attempt_number,
            wait,
        )


def _enabled(log: Log, level: int) -> bool:
    """Whether ``log`` keeps records of ``level`` (stdlib and Airflow's structlog loggers say;
    any other logger is asked every time)."""
    is_enabled_for = getattr(log, "isEnabledFor", None)
    return bool(is_enabled_for(level)) if callable(is_enabled_for) else True


# The API broke the connection after it began to answer: a retry may do better; if not, the
# error is the provider's, not a raw requests exception.
_CUT_OFF = (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)


def _first_reason(error: BaseException) -> str:
    """The first argument of an exception, cut short: urllib3's reason, never a body."""
    reason = error.args[0] if error.args else ""
    return str(reason)[:200]


class PagePull:
    """The pages of one pull, in order, each with its records set; iterate it once.

    Follows ``paginator`` until it has no next page. Only one page is held at a time: a page
    is consumed before the next is fetched. After ``max_pages`` pages the pull stops and
    ``truncated`` says whether the API had more.
    """

    def __init__(
        self,
        fetcher: PageFetcher,
        first: PageRequest,
        paginator: Paginator | None,
        records_of: Callable[[Page], list[Any]],
        *,
        max_pages: int | None = None,
    ) -> None:
        if max_pages is not None and max_pages < 1:
            raise ValueError("max_pages must be >= 1")
        self.fetcher = fetcher
        self.first = first
        self.paginator = paginator
        self.records_of = records_of
        self.max_pages = max_pages
        self.truncated = False

    def __iter__(self) -> Iterator[Page]:
        paginator = self.paginator
        request = paginator.first_request(self.first) if paginator else self.first
        number = 1
        while True:
            page = Page(number, request, self.fetcher.fetch(request, number))
            page.records = self.records_of(page)
            yield page
            following = next_request(paginator, page)
            if following is None:
                return
            if self.max_pages is not None and number >= self.max_pages:
                self.truncated = True
                return
            request = following
            number += 1


def next_request(paginator: Paginator | None, page: Page) -> PageRequest | None:
    """The request of the page after ``page`` (None: it was the last); raises
    ``PaginationLoopError`` when the paginator asks for ``page`` again."""
    if paginator is None:
        return None
    following = paginator.next_request(page)
    if following is not None and following == page.request:
        raise PaginationLoopError(
            f"{type(paginator).__name__} returned the request of page {page.number} again "
            "as the next page; stopping rather than looping forever (check its parameters)"
        )
    return following


def close_session(session: requests.Session) -> None:
    """Close the session and its pooled sockets now, not when they are garbage-collected.

    ``Session.close()`` only makes urllib3 forget its connection pools; their sockets stay
    open while anything (a response in a reference cycle, say) still refers to a pool.
    """
    for adapter in session.adapters.values():
        pools = getattr(getattr(adapter, "poolmanager", None), "pools", None)
        if pools is None:
            continue
        for key in list(pools.keys()):
            pool = pools.get(key)
            if pool is not None:
                pool.close()
    session.close()


class Progress:
    """Counts a pull and logs a line for page 1 and then at most one every ``interval``
    seconds (0: every page); never bodies or headers. The caller logs the summary."""

    def __init__(self, log: Log, interval: float = 5.0) -> None:
        self.log = log
        self.interval = interval
        self.started = monotonic()
        self.pages = 0
        self.records = 0
        self._next_line = self.started

    @property
    def elapsed(self) -> float:
        return monotonic() - self.started

    def page(self, records: int, written_bytes: int | None = None) -> None:
        self.pages += 1
        self.records += records
        now = monotonic()
        if now < self._next_line:
            return
        self._next_line = now + self.interval
        written = f", {human_size(written_bytes)} written" if written_bytes is not None else ""
        self.log.info(
            "Page %d: %d records (%s so far%s), %.1f s elapsed",
            self.pages,
            records,
            f"{self.records:,}",
            written,
            now - self.started,
        )


def human_size(n: int) -> str:
    """1536 -> "1.5 KiB"."""
    size, unit = float(n), "B"
    for bigger in ("KiB", "MiB", "GiB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
