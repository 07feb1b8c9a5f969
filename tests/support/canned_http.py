"""A real HTTP server on 127.0.0.1 that answers from a script of canned responses.

For unit-level edge cases of the token client (odd bodies, status codes, headers) that a
well-behaved authorization server never produces.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Canned:
    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False  # close the socket without answering


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float = field(default_factory=time.time)  # before any canned delay


class CannedServer:
    def __init__(self) -> None:
        self.script: deque[Canned] = deque()
        self.default = Canned(status=500, body=b"no canned response left")
        self.requests: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append(
                    Seen(self.command, self.path, dict(self.headers.items()), body)
                )
                canned = server.script.popleft() if server.script else server.default
                if canned.delay:
                    threading.Event().wait(canned.delay)
                if canned.drop:
                    self.close_connection = True
                    return
                payload = canned.body.encode() if isinstance(canned.body, str) else canned.body
                self.send_response(canned.status)
                for name, value in canned.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def add(self, *responses: Canned) -> None:
        self.script.extend(responses)

    def add_json(self, status: int, body: str, **headers: str) -> None:
        self.add(Canned(status, body, {"Content-Type": "application/json", **headers}))

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
