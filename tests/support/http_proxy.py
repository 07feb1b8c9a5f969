"""A real HTTP forward proxy on 127.0.0.1 for tests: absolute-URI requests and CONNECT tunnels.

    with HttpProxy(credentials=("proxyuser", "proxy-pass")) as proxy:
        session.proxies = {"http": proxy.url_with_credentials, "https": proxy.url_with_credentials}
        ...
        assert proxy.targets() == ["127.0.0.1:8443", ...]

Every request that reaches the proxy is appended to ``proxy.log`` (a ``ProxiedRequest``:
method, target, whether it was authorized, the status the proxy answered) before the proxy
answers it, and ``proxy.wait_for(n)`` blocks until ``n`` requests were seen, so tests wait on
an event, never on the clock.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import http.client
import select
import socket
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

# Headers that describe one hop and must not be forwarded (RFC 9110 section 7.6.1).
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


@dataclass
class ProxiedRequest:
    method: str
    target: str  # "host:port" for CONNECT, the absolute URI otherwise
    authorized: bool
    proxy_authorization: str | None  # the header as received, to check what a client sent
    status: int = 0  # what the proxy answered (0 until it answered); 200 for an open tunnel

    @property
    def host_port(self) -> str:
        if self.method == "CONNECT":
            return self.target
        parts = urllib.parse.urlsplit(self.target)
        return f"{parts.hostname}:{parts.port or 80}"


class HttpProxy:
    """A threaded forward proxy; a context manager that starts on enter and stops on exit.

    ``credentials``: if given, every request must carry ``Proxy-Authorization: Basic`` with
    them, or gets 407. ``refuse_with``: answer every request with this status instead of
    forwarding it (a proxy that fails). ``upstream_timeout`` bounds every upstream read.
    """

    def __init__(
        self,
        *,
        credentials: tuple[str, str] | None = None,
        refuse_with: int | None = None,
        upstream_timeout: float = 60.0,
    ) -> None:
        self.credentials = credentials
        self.refuse_with = refuse_with
        self.upstream_timeout = upstream_timeout
        self.log: list[ProxiedRequest] = []
        self._seen = threading.Condition()
        self._sockets: set[socket.socket] = set()
        self._sockets_lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> HttpProxy:
        handler = _make_handler(self)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"http-proxy-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._sockets_lock:
            for sock in list(self._sockets):
                _close_quietly(sock)
            self._sockets.clear()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._httpd = None

    def __enter__(self) -> HttpProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what tests use --------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url_with_credentials(self) -> str:
        if self.credentials is None:
            return self.url
        user, password = (urllib.parse.quote(part, safe="") for part in self.credentials)
        return f"http://{user}:{password}@127.0.0.1:{self.port}"

    def targets(self) -> list[str]:
        """``host:port`` of everything that went through (or was refused), in order."""
        with self._seen:
            return [entry.host_port for entry in self.log]

    def wait_for(
        self,
        count: int = 1,
        timeout: float = 30.0,
        where: Callable[[ProxiedRequest], bool] = lambda _entry: True,
    ) -> list[ProxiedRequest]:
        """Block until at least ``count`` logged requests match ``where``; return them."""
        with self._seen:
            matched = self._seen.wait_for(
                lambda: sum(1 for e in self.log if where(e)) >= count, timeout=timeout
            )
            if not matched:
                raise TimeoutError(
                    f"proxy saw {len(self.log)} request(s) in {timeout} s, waited for {count}"
                )
            return [e for e in self.log if where(e)]

    def clear(self) -> None:
        with self._seen:
            self.log.clear()

    # -- internals used by the handler -----------------------------------------------------
    def _record(self, entry: ProxiedRequest) -> None:
        with self._seen:
            self.log.append(entry)
            self._seen.notify_all()

    def _track(self, sock: socket.socket) -> None:
        with self._sockets_lock:
            self._sockets.add(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._sockets_lock:
            self._sockets.discard(sock)

    def _authorized(self, header: str | None) -> bool:
        if self.credentials is None:
            return True
        if not header or not header.lower().startswith("basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, _, password = decoded.partition(":")
        return (user, password) == self.credentials


def _close_quietly(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def _make_handler(proxy: HttpProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            proxy._track(self.connection)

        def finish(self) -> None:
            try:
                super().finish()
            finally:
                proxy._untrack(self.connection)

        # -- common ------------------------------------------------------------------------
        def _admit(self) -> ProxiedRequest | None:
            header = self.headers.get("Proxy-Authorization")
            entry = ProxiedRequest(
                method=self.command,
                target=self.path,
                authorized=proxy._authorized(header),
                proxy_authorization=header,
            )
            if not entry.authorized:
                entry.status = 407
                proxy._record(entry)
                self._drain_body()
                self._reply(
                    407,
                    b"proxy authentication required",
                    {"Proxy-Authenticate": 'Basic realm="test-proxy"'},
                )
                return None
            if proxy.refuse_with is not None:
                entry.status = proxy.refuse_with
                proxy._record(entry)
                self._drain_body()
                self._reply(proxy.refuse_with, b"refused by the test proxy")
                return None
            return entry

        def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _read_body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks: list[bytes] = []
                while True:
                    size_line = self.rfile.readline(65537)
                    size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline(3)
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _drain_body(self) -> None:
            if self.command != "CONNECT":
                self._read_body()

        # -- absolute-URI requests ---------------------------------------------------------
        def _forward(self) -> None:
            entry = self._admit()
            if entry is None:
                return
            parts = urllib.parse.urlsplit(self.path)
            if parts.scheme != "http" or not parts.hostname:
                entry.status = 400
                proxy._record(entry)
                self._drain_body()
                self._reply(400, b"the test proxy forwards absolute http:// URIs only")
                return
            body = self._read_body()
            path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
            headers = {
                name: value
                for name, value in self.headers.items()
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length"
            }
            if body or self.command in ("POST", "PUT", "PATCH"):
                headers["Content-Length"] = str(len(body))
            upstream = http.client.HTTPConnection(
                parts.hostname, parts.port or 80, timeout=proxy.upstream_timeout
            )
            try:
                upstream.request(self.command, path, body=body or None, headers=headers)
                response = upstream.getresponse()
                payload = response.read()
            except OSError as exc:
                entry.status = 502
                proxy._record(entry)
                self._reply(502, f"upstream failed: {type(exc).__name__}".encode())
                return
            finally:
                upstream.close()
            entry.status = response.status
            proxy._record(entry)
            self.send_response(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _forward

        # -- CONNECT tunnels ---------------------------------------------------------------
        def do_CONNECT(self) -> None:
            entry = self._admit()
            if entry is None:
                return
            host, _, port = self.path.rpartition(":")
            try:
                upstream = socket.create_connection(
                    (host.strip("[]"), int(port)), timeout=proxy.upstream_timeout
                )
            except (OSError, ValueError) as exc:
                entry.status = 502
                proxy._record(entry)
                self._reply(502, f"tunnel failed: {type(exc).__name__}".encode())
                return
            proxy._track(upstream)
            entry.status = 200
            proxy._record(entry)
            try:
                self.send_response(200, "Connection Established")
                self.end_headers()
                self.wfile.flush()
                self._relay(self.connection, upstream)
            finally:
                proxy._untrack(upstream)
                _close_quietly(upstream)
                self.close_connection = True

        def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
            client.settimeout(None)
            upstream.settimeout(None)
            sockets = [client, upstream]
            while True:
                readable, _, broken = select.select(sockets, [], sockets, proxy.upstream_timeout)
                if broken or not readable:
                    return
                for source in readable:
                    other = upstream if source is client else client
                    try:
                        data = source.recv(65536)
                        if not data:
                            return
                        other.sendall(data)
                    except OSError:
                        return

    return Handler
