"""Trigger events: API answers and errors as the data the metadata database stores."""

from __future__ import annotations

import json

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from airflow_provider_oauthcc.auth.errors import (
    ApiConnectionError,
    ApiError,
    ApiUnauthorizedError,
    OAuthCCConfigError,
    OAuthCCError,
    TokenRequestError,
    TokenResponseError,
)
from airflow_provider_oauthcc.triggers import events

SECRET = "s3cret-Value-events-42"


def response(status: int = 200, body: bytes = b"{}", **headers: str) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer.reason = "OK" if status == 200 else "Nope"
    answer.url = "https://api.example.com/v1/jobs/7"
    answer.headers = CaseInsensitiveDict({"Content-Type": "application/json", **headers})
    answer._content = body
    return answer


def test_response_round_trip_through_json() -> None:
    body = b'{"status": "done", "blob": "\xc3\xa9"}' + bytes(range(256))  # not even UTF-8
    original = response(200, body, ETag='"v1"')
    original.encoding = "utf-8"
    stored = json.loads(json.dumps(events.encode_response(original)))
    back = events.decode_response(stored)
    assert back.status_code == 200 and back.reason == "OK"
    assert back.url == original.url and back.encoding == "utf-8"
    assert back.content == body
    assert back.headers["etag"] == '"v1"'  # case-insensitive, as requests'
    assert back.ok


def test_too_large_an_answer_is_refused_with_the_way_out() -> None:
    big = response(200, b"x" * (events.MAX_EVENT_BODY + 1))
    with pytest.raises(events.ResponseTooLargeError, match="without deferrable=True"):
        events.encode_response(big)


def test_digest_is_status_and_body_not_headers() -> None:
    pending = events.response_digest(response(200, b'{"status":"pending"}', Date="Mon"))
    assert pending == events.response_digest(response(200, b'{"status":"pending"}', Date="Tue"))
    assert pending != events.response_digest(response(200, b'{"status":"running"}'))
    assert pending != events.response_digest(response(202, b'{"status":"pending"}'))


@pytest.mark.parametrize(
    "error",
    [
        OAuthCCConfigError("auth_url", "no token endpoint"),
        TokenRequestError(
            "token endpoint refused the request: invalid_client (HTTP 401)",
            status=401,
            error="invalid_client",
            error_description="bad secret",
            error_uri="https://idp/doc",
        ),
        TokenResponseError("token response has no access_token", status=200),
        ApiError("500:INTERNAL SERVER ERROR", status=500),
        ApiUnauthorizedError("401:UNAUTHORIZED", status=401, error="invalid_token"),
        ApiConnectionError(
            "cannot reach the API http://x:1 (connection refused)", request_sent=False
        ),
        OAuthCCError("something else"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_error_round_trip_keeps_class_message_and_fields(error: OAuthCCError) -> None:
    stored = json.loads(json.dumps(events.encode_error(error)))
    back = events.decode_error(stored)
    assert type(back) is type(error)
    assert str(back) == str(error)
    for name in ("field", "status", "error", "error_description", "error_uri", "request_sent"):
        assert getattr(back, name, None) == getattr(error, name, None), name


def test_a_subclass_comes_back_as_its_public_class() -> None:
    class PageRetryError(ApiError):
        pass

    back = events.decode_error(events.encode_error(PageRetryError("503:BUSY", status=503)))
    assert type(back) is ApiError and back.status == 503


def test_other_exceptions_become_oauthcc_errors_naming_their_class() -> None:
    back = events.decode_error(events.encode_error(KeyError("status")))
    assert type(back) is OAuthCCError
    assert str(back) == "KeyError: 'status'"


def test_secrets_are_scrubbed_from_error_events() -> None:
    stored = events.encode_error(RuntimeError(f"echoed {SECRET} back"), secrets=(SECRET,))
    assert SECRET not in json.dumps(stored)
    assert "echoed *** back" in stored["message"]
