"""A user's ``retry_args`` merged with the provider's rules (``retry.user_retrying``)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import tenacity

from airflow_provider_oauthcc.auth.errors import ApiError, TokenRequestRejected
from airflow_provider_oauthcc.pull.retry import RetryableStatusError, user_retrying


def status_error(status: int, retry_after: float | None) -> RetryableStatusError:
    response = requests.Response()
    response.status_code, response.reason = status, "Busy"
    return RetryableStatusError(response, retry_after)


def waits_for(error: BaseException, retry_args: dict[str, Any], max_wait: float = 60.0) -> float:
    """The wait the merged policy plans after ``error`` on the first attempt."""
    slept: list[float] = []
    retrying = user_retrying(
        {"stop": tenacity.stop_after_attempt(2), "reraise": True, **retry_args},
        max_wait=max_wait,
    )
    retrying.sleep = slept.append  # type: ignore[method-assign,assignment]
    errors = iter([error])

    def attempt() -> str:
        failure = next(errors, None)
        if failure is not None:
            raise failure
        return "done"

    assert retrying(attempt) == "done"
    return slept[0]


def test_retry_after_is_waited_even_when_the_user_waits_less() -> None:
    assert waits_for(status_error(429, 3), {"wait": tenacity.wait_none()}) == 3
    assert waits_for(status_error(503, 3), {}) == 3


def test_retry_after_is_bounded_by_max_wait() -> None:
    assert waits_for(status_error(429, 600), {"wait": tenacity.wait_none()}, max_wait=2) == 2


def test_the_users_longer_wait_still_applies() -> None:
    assert waits_for(status_error(429, 1), {"wait": tenacity.wait_fixed(5)}) == 5


def test_other_errors_wait_as_the_user_says() -> None:
    assert waits_for(ApiError("500:boom", status=500), {"wait": tenacity.wait_fixed(0.25)}) == 0.25
    assert waits_for(status_error(503, None), {"wait": tenacity.wait_fixed(0.5)}) == 0.5


def test_a_fail_fast_error_is_never_retried_whatever_the_condition() -> None:
    calls: list[int] = []

    def refused() -> None:
        calls.append(1)
        raise TokenRequestRejected("invalid_client", error="invalid_client")

    retrying = user_retrying(
        {
            "retry": tenacity.retry_if_exception_type(Exception),
            "stop": tenacity.stop_after_attempt(5),
            "wait": tenacity.wait_none(),
            "reraise": True,
        }
    )
    with pytest.raises(TokenRequestRejected):
        retrying(refused)
    assert calls == [1]


def test_the_provider_and_the_user_both_see_each_retry() -> None:
    seen: list[str] = []
    retrying = user_retrying(
        {
            "stop": tenacity.stop_after_attempt(3),
            "wait": tenacity.wait_none(),
            "before_sleep": lambda state: seen.append("user"),
        },
        before_sleep=lambda state: seen.append("provider"),
        reraise=True,
    )
    with pytest.raises(ApiError):  # reraise given as a default: the error, not RetryError
        retrying(lambda: (_ for _ in ()).throw(ApiError("500:boom", status=500)))
    assert seen == ["provider", "user", "provider", "user"]


def test_reraise_given_by_the_user_wins() -> None:
    retrying = user_retrying(
        {"stop": tenacity.stop_after_attempt(1), "reraise": False}, reraise=True
    )
    with pytest.raises(tenacity.RetryError):
        retrying(lambda: (_ for _ in ()).throw(ApiError("500:boom", status=500)))
