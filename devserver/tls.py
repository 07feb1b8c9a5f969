"""HTTPS for the dev server: TLS settings and a background HTTPS server.

The plain-HTTP servers run on uvicorn (keep-alive, see ``httpd``). uvicorn does not hand
the client certificate to the app, which ``tls_client_auth`` (RFC 8705) needs, so HTTPS
is served by werkzeug's threaded server: it puts the verified peer certificate in
``environ["SSL_CLIENT_CERT"]``. werkzeug closes the connection after every response, so
HTTPS servers are for TLS tests, not for benchmarks of connection reuse.
"""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

PEER_CERT_ENVIRON_KEY = "SSL_CLIENT_CERT"
HANDSHAKE_TIMEOUT = 10.0
LINGER_TIMEOUT = 2.0


@dataclass(frozen=True)
class ServerTLS:
    """Certificate and key the servers present; with ``client_ca_file`` the authorization
    server asks for a client certificate and accepts only those this CA signed.

    ``require_client_cert`` makes the handshake fail without one (the client sees a TLS
    alert); otherwise a request without one reaches the app, and ``tls_client_auth``
    answers 401 invalid_client. The protected API never asks for client certificates.
    """

    certfile: str | Path
    keyfile: str | Path
    client_ca_file: str | Path | None = None
    require_client_cert: bool = False

    def __post_init__(self) -> None:
        if self.require_client_cert and self.client_ca_file is None:
            raise ValueError("require_client_cert needs client_ca_file")

    @property
    def verifies_client_certs(self) -> bool:
        return self.client_ca_file is not None

    def context(self, *, client_certs: bool, optional: bool = False) -> ssl.SSLContext:
        """A server-side context; ``client_certs`` False never asks for a client certificate,
        ``optional`` asks without requiring one (the API, for certificate-bound tokens)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.certfile, self.keyfile)
        if client_certs and self.client_ca_file is not None:
            context.load_verify_locations(cafile=self.client_ca_file)
            context.verify_mode = (
                ssl.CERT_REQUIRED
                if self.require_client_cert and not optional
                else ssl.CERT_OPTIONAL
            )
        return context


class _QuietRequestHandler(WSGIRequestHandler):
    """No access log, and failed handshakes (which TLS tests cause on purpose) stay quiet."""

    def log(self, type: str, message: str, *args: Any) -> None:
        pass


class _HTTPSServer(ThreadedWSGIServer):
    """Does each TLS handshake in the connection's own thread, so a slow or failing
    handshake does not hold up the accept loop."""

    tls_context: ssl.SSLContext

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        tls = self.tls_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return tls, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError):
            _linger(request)
            return
        request.settimeout(None)
        super().finish_request(request, client_address)


def _linger(tls: ssl.SSLSocket) -> None:
    """After a failed handshake: half-close, then read what the client already sent (its
    request) until it hangs up. Closing with unread data would send a TCP reset, which can
    destroy the TLS alert (e.g. "certificate required") before the client reads it."""
    try:
        tls.shutdown(socket.SHUT_WR)  # drops the TLS state; later reads are plain TCP
        tls.settimeout(LINGER_TIMEOUT)
        while tls.recv(65536):
            pass
    except OSError:
        pass


class TLSBackgroundServer:
    """``httpd.BackgroundServer`` over HTTPS: binds on construction, serves from a daemon
    thread once ``start`` is given the app."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext) -> None:
        self._socket = socket.create_server((host, port))
        self.host = host
        self.port: int = self._socket.getsockname()[1]
        self._context = context
        self._server: _HTTPSServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def start(self, app: Flask) -> None:
        server = _HTTPSServer(
            self.host, self.port, app, _QuietRequestHandler, fd=self._socket.fileno()
        )
        server.tls_context = self._context
        # werkzeug reads this to set wsgi.url_scheme and the SSL_CLIENT_CERT environ key.
        server.ssl_context = self._context
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"devserver-tls-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def request_stop(self) -> None:
        """Nothing to do ahead: ``stop`` returns within one poll interval."""

    def stop(self) -> None:
        if self._server is not None and self._thread is not None and self._thread.is_alive():
            self._server.shutdown()  # serve_forever closes the server socket on its way out
            self._thread.join(timeout=5)
        elif self._server is not None:
            self._server.server_close()
        self._socket.close()
