"""Replaying a request after a 401 when its body is a file: a seekable one is rewound and sent
again whole; a non-seekable one (a pipe) cannot be, so it is not replayed, and the error says so."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from airflow_provider_oauthcc.auth.errors import ApiUnauthorizedError
from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook
from devserver import DevServer
from tests.support.connections import airflow_conn, conn_json

from .conftest import SECRET

pytestmark = pytest.mark.integration

PAYLOAD = b"line one\nline two\n" * 500


@pytest.fixture
def hook(server: DevServer) -> OAuthCCHook:
    value = conn_json(server.api_url, "app", SECRET, auth_url=server.token_url, timeout=30)
    with airflow_conn("replay_api", value):
        hook = OAuthCCHook(method="POST", oauth_conn_id="replay_api")
        hook.oauth_config  # noqa: B018  (reads the connection while the env var is set)
    hook.get_token()
    return hook


@pytest.fixture
def pipe_body() -> Iterator[BinaryIO]:
    """The read end of a pipe, fed by a thread: a file body that cannot seek."""
    read_fd, write_fd = os.pipe()

    def feed() -> None:
        with os.fdopen(write_fd, "wb") as writer:
            writer.write(PAYLOAD)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    with os.fdopen(read_fd, "rb") as reader:
        yield reader
    feeder.join(timeout=30)


def test_seekable_file_body_is_rewound_and_replayed(
    server: DevServer, hook: OAuthCCHook, tmp_path: Path
) -> None:
    upload = tmp_path / "upload.txt"
    upload.write_bytes(PAYLOAD)
    server.revoke_all_tokens()
    with upload.open("rb") as body:
        response = hook.run("/v1/echo", data=body, headers={"Content-Type": "text/plain"})
    assert response.status_code == 200
    captures = [c for c in server.stats.api_captures if c.path == "/v1/echo"]
    assert [c.status for c in captures] == [401, 200]
    assert [c.body for c in captures] == [PAYLOAD, PAYLOAD], "the replay did not send it whole"
    assert server.stats.token_requests == 2


def test_non_seekable_body_is_not_replayed(
    server: DevServer, hook: OAuthCCHook, pipe_body: BinaryIO
) -> None:
    server.revoke_all_tokens()
    with pytest.raises(ApiUnauthorizedError):
        hook.run("/v1/echo", data=pipe_body, headers={"Content-Type": "text/plain"})
    captures = [c for c in server.stats.api_captures if c.path == "/v1/echo"]
    assert [c.status for c in captures] == [401], "a half-read stream was sent again"


def test_non_seekable_body_401_says_why_it_was_not_replayed(
    server: DevServer, hook: OAuthCCHook, pipe_body: BinaryIO
) -> None:
    server.revoke_all_tokens()
    with pytest.raises(ApiUnauthorizedError) as info:
        hook.run("/v1/echo", data=pipe_body, headers={"Content-Type": "text/plain"})
    message = str(info.value)
    assert "also after a refresh" not in message
    assert "replay" in message and "body" in message, message
