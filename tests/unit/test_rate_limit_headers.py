"""What an API's rate-limit headers teach the request budget: every form in use, read right."""

from __future__ import annotations

import email.utils

import pytest
from requests.structures import CaseInsensitiveDict

from airflow_provider_oauthcc.auth.rate_limit_headers import (
    DEFAULT_429_PAUSE,
    MAX_PAUSE,
    advice_from,
)

NOW = 1_800_000_000.0


def advice(status: int = 200, **headers: str):  # type: ignore[no-untyped-def]
    names = {k.replace("_", "-"): v for k, v in headers.items()}
    return advice_from(status, CaseInsensitiveDict(names), now=NOW)


def test_nothing_said_nothing_learned() -> None:
    assert advice() is None
    assert advice(RateLimit_Limit="100") is None  # a limit without a window or a state


def test_draft_fields_pace_the_remaining_requests_over_the_reset() -> None:
    said = advice(RateLimit_Limit="10", RateLimit_Remaining="4", RateLimit_Reset="2")
    assert said is not None
    assert said.pause is None
    assert said.interval == pytest.approx(0.5)
    assert said.span == 2


def test_nothing_remaining_pauses_until_the_reset() -> None:
    said = advice(RateLimit_Remaining="0", RateLimit_Reset="3")
    assert said is not None and said.pause == 3


def test_structured_fields_with_the_policy_as_a_floor() -> None:
    said = advice(RateLimit='"default";r=50;t=1', RateLimit_Policy='"default";q=100;w=10')
    assert said is not None
    # 50 left for 1 s would allow 0.02 s apart; the policy's 100 per 10 s says 0.1 s.
    assert said.interval == pytest.approx(0.1)


def test_structured_fields_the_tightest_policy_wins() -> None:
    said = advice(RateLimit='"burst";r=5;t=1, "daily";r=1;t=10')
    assert said is not None
    assert said.interval == pytest.approx(10.0)


def test_older_combined_dictionary_form() -> None:
    said = advice(RateLimit="limit=10, remaining=2, reset=4")
    assert said is not None
    assert said.interval == pytest.approx(2.0)


def test_x_ratelimit_reset_as_a_unix_time() -> None:
    said = advice(
        X_RateLimit_Limit="5000", X_RateLimit_Remaining="0", X_RateLimit_Reset=str(int(NOW) + 30)
    )
    assert said is not None and said.pause == pytest.approx(30)


def test_429_pauses_for_retry_after_seconds_or_date() -> None:
    assert advice(429, Retry_After="7").pause == 7  # type: ignore[union-attr]
    date = email.utils.formatdate(NOW + 12, usegmt=True)
    assert advice(429, Retry_After=date).pause == pytest.approx(12)  # type: ignore[union-attr]


def test_429_without_retry_after_uses_the_reset_then_a_default() -> None:
    said = advice(429, RateLimit_Remaining="0", RateLimit_Reset="4")
    assert said is not None and said.pause == 4
    said = advice(429)
    assert said is not None and said.pause == DEFAULT_429_PAUSE


def test_a_503_pauses_no_one() -> None:
    assert advice(503, Retry_After="2") is None
    assert advice(503) is None


def test_a_far_pause_is_bounded() -> None:
    said = advice(429, Retry_After="99999999")
    assert said is not None and said.pause == MAX_PAUSE


@pytest.mark.parametrize(
    "headers",
    [
        {"RateLimit_Remaining": "x", "RateLimit_Reset": "2"},
        {"RateLimit_Remaining": "nan", "RateLimit_Reset": "2"},
        {"RateLimit": '"p";r=;t=2'},
        {"Retry_After": "soon"},
    ],
)
def test_garbage_is_ignored_not_raised(headers: dict[str, str]) -> None:
    assert advice(200, **headers) is None
