"""Serve a WSGI app from a daemon thread.

uvicorn (through a2wsgi) rather than werkzeug's ``make_server``: werkzeug 3.1 sends
``Connection: close`` on every response, so clients could never reuse a connection
and tests or benchmarks of connection reuse would measure nothing.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from a2wsgi import WSGIMiddleware
from flask import Flask

WSGI_WORKERS = 32  # concurrent requests per server (a delay fault holds a worker)


class BackgroundServer:
    """Binds its socket on construction, so ``url`` is known before the app exists."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._socket = socket.create_server((host, port))
        self.host = host
        self.port: int = self._socket.getsockname()[1]
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._wsgi: WSGIMiddleware | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, app: Flask, timeout: float = 10.0, workers: int = WSGI_WORKERS) -> None:
        self._wsgi = WSGIMiddleware(app, workers=workers)  # type: ignore[arg-type]
        config = uvicorn.Config(
            self._wsgi,
            interface="asgi3",
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = server = uvicorn.Server(config)
        self._thread = thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [self._socket]},
            name=f"devserver-{self.port}",
            daemon=True,
        )
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.005)

    def request_stop(self) -> None:
        """Ask the server to shut down without waiting (see ``stop``)."""
        if self._server is not None:
            self._server.should_exit = True

    def stop(self) -> None:
        self.request_stop()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=5)
        if self._wsgi is not None:
            self._wsgi.executor.shutdown(wait=False, cancel_futures=True)
        self._socket.close()
