"""The test proxy itself: it forwards, tunnels, checks credentials and logs what went through."""

from __future__ import annotations

import socket

import pytest
import requests

from tests.support.canned_http import Canned, CannedServer
from tests.support.http_proxy import HttpProxy


@pytest.fixture
def upstream(canned: CannedServer) -> CannedServer:
    return canned


def test_forwards_absolute_uri_requests_and_logs_them(upstream: CannedServer) -> None:
    upstream.add(Canned(200, b"hello", {"X-Upstream": "yes"}))
    with HttpProxy() as proxy:
        response = requests.post(
            f"{upstream.url}/path?q=1",
            data=b"payload",
            headers={"X-Client": "c"},
            proxies={"http": proxy.url},
            timeout=30,
        )
        assert response.status_code == 200
        assert response.content == b"hello"
        assert response.headers["X-Upstream"] == "yes"
        [entry] = proxy.wait_for(1)
    assert entry.method == "POST"
    assert entry.target == f"{upstream.url}/path?q=1"
    assert entry.status == 200
    [seen] = upstream.requests
    assert seen.path == "/path?q=1"
    assert seen.body == b"payload"
    assert seen.headers["X-Client"] == "c"


def test_requires_and_strips_proxy_credentials(upstream: CannedServer) -> None:
    upstream.add(Canned(200, b"ok"))
    with HttpProxy(credentials=("user", "p@ss:word")) as proxy:
        refused = requests.get(upstream.url, proxies={"http": proxy.url}, timeout=30)
        assert refused.status_code == 407
        accepted = requests.get(
            upstream.url, proxies={"http": proxy.url_with_credentials}, timeout=30
        )
        assert accepted.status_code == 200
        assert [e.authorized for e in proxy.wait_for(2)] == [False, True]
    assert "Proxy-Authorization" not in upstream.requests[0].headers


def test_tunnels_connect(upstream: CannedServer) -> None:
    upstream.add(Canned(200, b"through the tunnel"))
    port = upstream.url.rsplit(":", 1)[1]
    with HttpProxy() as proxy, socket.create_connection(("127.0.0.1", proxy.port), 30) as sock:
        sock.sendall(
            f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        )
        reader = sock.makefile("rb")
        assert reader.readline().split()[1] == b"200"
        while reader.readline() not in (b"\r\n", b""):
            pass
        sock.sendall(b"GET /in HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert b"through the tunnel" in reader.read()
        assert proxy.targets() == [f"127.0.0.1:{port}"]
    assert upstream.requests[0].path == "/in"


def test_refuse_with_answers_without_forwarding(upstream: CannedServer) -> None:
    with HttpProxy(refuse_with=502) as proxy:
        response = requests.get(upstream.url, proxies={"http": proxy.url}, timeout=30)
        assert response.status_code == 502
        assert proxy.wait_for(1)[0].status == 502
    assert upstream.requests == []
