"""Polite per-request retries: Retry-After honoured (bounded), backoff for 5xx and lost connections.

One retry policy covers one request (one page): a failure on page 40 retries page 40, never
the pull from page 1. A 401 is not retried here: BearerAuth already refreshed the token and
replayed the request once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests
import tenacity

from airflow_provider_oauthcc.auth.errors import ApiError, OAuthCCFailFast

# RFC 9110 §9.2.2. Only these are retried after the server may have acted on the request.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
# The server says it did not act on the request: safe to retry for any method.
NOT_PROCESSED_STATUSES = frozenset({429, 503})
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class RetryableStatusError(ApiError):
    """The API answered with a status worth retrying; carries its Retry-After in seconds."""

    def __init__(self, response: requests.Response, retry_after: float | None) -> None:
        super().__init__(f"{response.status_code}:{response.reason}", status=response.status_code)
        self.retry_after = retry_after

    def gave_up(self, page: int, attempts: int) -> ApiError:
        """The error to raise once no attempt is left: which page, what, how often."""
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        return ApiError(f"Page {page}: {self} (gave up after {tries})", status=self.status)


class RetryPolicy:
    """How often and how long to retry one request.

    :param retries: retries after the first attempt (0 disables retrying).
    :param max_wait: upper bound, in seconds, of any wait, including a server's Retry-After.
    :param backoff: base of the exponential backoff with full jitter, in seconds.
    :param idempotent: whether the method may be sent again after the server may have acted
        on it; if not, only 429, 503 and failures to connect are retried.
    """

    def __init__(
        self,
        retries: int = 5,
        max_wait: float = 60.0,
        backoff: float = 0.5,
        idempotent: bool = True,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must be >= 0")
        if max_wait < 0:
            raise ValueError("max_wait must be >= 0")
        self.retries = retries
        self.max_wait = max_wait
        self.idempotent = idempotent
        self._backoff = tenacity.wait_random_exponential(multiplier=backoff, max=max_wait)

    def should_retry_status(self, status: int) -> bool:
        if status in NOT_PROCESSED_STATUSES:
            return True
        return self.idempotent and status in RETRYABLE_STATUSES

    def should_retry(self, error: BaseException) -> bool:
        if isinstance(error, RetryableStatusError):
            return True
        if isinstance(error, requests.exceptions.ConnectTimeout):
            return True  # nothing was sent
        if isinstance(
            error,
            requests.exceptions.ConnectionError
            | requests.exceptions.Timeout
            | requests.exceptions.ChunkedEncodingError,
        ):
            return self.idempotent
        return False

    def wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RetryableStatusError) and error.retry_after is not None:
            return min(error.retry_after, self.max_wait)
        return float(self._backoff(state))

    def retrying(
        self, before_sleep: Callable[[tenacity.RetryCallState], None]
    ) -> tenacity.Retrying:
        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retries + 1),
            wait=self.wait,
            retry=tenacity.retry_if_exception(self.should_retry),
            before_sleep=before_sleep,
            reraise=True,
        )


def retry_after_seconds(response: requests.Response, now: float | None = None) -> float | None:
    """Seconds from the answer's Retry-After header: delta-seconds or an HTTP date."""
    from airflow_provider_oauthcc.auth.rate_limit_headers import retry_after

    return retry_after(response.headers.get("Retry-After"), now)


def describe_failure(error: BaseException | None) -> str:
    """A short reason for a retry log line: a status or an exception class, never a body."""
    if isinstance(error, ApiError):
        return str(error)
    if error is None:
        return "no result"
    return type(error).__name__


def user_retrying(
    retry_args: dict[str, Any],
    *,
    max_wait: float = 60.0,
    before_sleep: Callable[[tenacity.RetryCallState], None] | None = None,
    reraise: bool | None = None,
) -> tenacity.Retrying:
    """HttpOperator's ``retry_args`` (tenacity arguments), merged with the provider's rules.

    The user's ``stop``, ``retry`` and ``wait`` apply, except that:

    - a fail-fast error (a refused credential, a configuration error) is never retried,
      whatever the ``retry`` condition: no attempt can succeed without a change;
    - after a 429 or 503 with a ``Retry-After``, the wait is at least that long (at most
      ``max_wait`` seconds; longer if the user's ``wait`` says so).

    ``before_sleep`` runs before the user's own (the retry log line and count); ``reraise``,
    when given, is the default for a ``retry_args`` that does not say.
    """
    args = dict(retry_args)
    condition = args.get("retry", tenacity.retry_if_exception_type())
    args["retry"] = tenacity.retry_if_not_exception_type(OAuthCCFailFast) & condition
    args["wait"] = RetryAfterWait(args.get("wait"), max_wait)
    if before_sleep is not None:
        args["before_sleep"] = _chained(before_sleep, args.get("before_sleep"))
    if reraise is not None:
        args.setdefault("reraise", reraise)
    return tenacity.Retrying(**args)


class RetryAfterWait(tenacity.wait.wait_base):
    """A user's tenacity ``wait`` that waits at least a 429/503's Retry-After (bounded)."""

    def __init__(self, wait: Callable[[tenacity.RetryCallState], float] | None, max_wait: float):
        self.wait = wait if wait is not None else tenacity.wait_none()
        self.max_wait = max_wait

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        planned = float(self.wait(retry_state))
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        retry_after = getattr(error, "retry_after", None)
        if not isinstance(error, ApiError) or retry_after is None:
            return planned
        return max(planned, min(float(retry_after), self.max_wait))


def _chained(
    first: Callable[[tenacity.RetryCallState], None], then: Any
) -> Callable[[tenacity.RetryCallState], None]:
    if then is None:
        return first

    def both(state: tenacity.RetryCallState) -> None:
        first(state)
        then(state)

    return both
