"""The test servers get a port nobody else holds, while other stages of `make test` start
servers side by side."""

from __future__ import annotations

import socket

import pytest

from tests.support import redis_server
from tests.support.redis_server import RedisServer


def test_redis_picks_another_port_when_its_first_one_was_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        first = taken.getsockname()[1]
        offered = iter([first])
        pick_free = redis_server.free_port
        monkeypatch.setattr(redis_server, "free_port", lambda: next(offered, None) or pick_free())
        server = RedisServer()
        try:
            assert server.port != first
            assert server.client().ping()
        finally:
            server.stop()
