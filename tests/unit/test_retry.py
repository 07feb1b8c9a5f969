"""RetryPolicy: which failures are retried, and how long to wait."""

from __future__ import annotations

import email.utils

import pytest
import requests

from airflow_provider_oauthcc.pull.retry import RetryPolicy, retry_after_seconds


def response_with(**headers: str) -> requests.Response:
    response = requests.Response()
    response.headers.update(headers)
    return response


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after_seconds(response_with(**{"Retry-After": "7"})) == 7.0
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert retry_after_seconds(response_with(**{"Retry-After": date}), now=1_000_000) == 30.0
    assert retry_after_seconds(response_with(**{"Retry-After": date}), now=2_000_000) == 0.0
    assert retry_after_seconds(response_with(**{"Retry-After": "soon"})) is None
    assert retry_after_seconds(response_with()) is None


@pytest.mark.parametrize(
    ("status", "idempotent", "retried"),
    [
        (429, False, True),
        (503, False, True),
        (500, True, True),
        (502, True, True),
        (504, True, True),
        (500, False, False),
        (400, True, False),
        (401, True, False),
        (404, True, False),
    ],
)
def test_statuses_retried(status: int, idempotent: bool, retried: bool) -> None:
    assert RetryPolicy(idempotent=idempotent).should_retry_status(status) is retried


@pytest.mark.parametrize(
    ("error", "idempotent", "retried"),
    [
        (requests.exceptions.ConnectTimeout(), False, True),
        (requests.exceptions.ConnectionError(), True, True),
        (requests.exceptions.ConnectionError(), False, False),
        (requests.exceptions.ReadTimeout(), True, True),
        (requests.exceptions.ReadTimeout(), False, False),
        (requests.exceptions.ChunkedEncodingError(), True, True),
        (ValueError("bad json"), True, False),
    ],
)
def test_errors_retried(error: Exception, idempotent: bool, retried: bool) -> None:
    assert RetryPolicy(idempotent=idempotent).should_retry(error) is retried


def test_policy_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="retries must be >= 0"):
        RetryPolicy(retries=-1)
    with pytest.raises(ValueError, match="max_wait must be >= 0"):
        RetryPolicy(max_wait=-1)
