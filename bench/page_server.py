"""A tiny HTTP/1.1 API that serves pre-built pages from memory, much faster than any client.

For throughput benchmarks of the pull client: every answer is a bytes object built at start-up,
sent with one ``sendall`` on a keep-alive connection, so the time a pull takes is the client's.

    GET  /items?page=N   a JSON list of ``page_size`` records; ``Link: <...?page=N+1>; rel="next"``
                         on every page but the last
    POST /token          ``{"access_token": ..., "token_type": "Bearer", "expires_in": 3600}``
                         for any client (the bench measures pages, not token checks)
    GET  /stats          ``{"connections": n}``: connections accepted so far

Run it in its own process (``PageServerProcess``), so it does not share the client's GIL:

    python bench/page_server.py --pages 2000 --page-size 100     # prints "PORT <n>"

``--shape order`` (default) serves nested order records of about 240 bytes of JSON; ``--shape
flat`` small flat ones of about 130 bytes.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Self

TOKEN = b'{"access_token":"bench-token","token_type":"Bearer","expires_in":3600}'


def record(n: int, pad: int) -> dict[str, object]:
    """One record, shaped like a CRM order: nested, mixed types, some text."""
    return {
        "id": n,
        "number": f"SO-{n:08d}",
        "status": ("open", "paid", "shipped", "cancelled")[n % 4],
        "amount": round(n * 1.37 % 10_000, 2),
        "currency": "EUR",
        "updated_at": f"2026-01-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:00Z",
        "customer": {"id": n % 977, "name": f"Customer {n % 977}", "vip": n % 11 == 0},
        "tags": ["web", "priority"] if n % 3 == 0 else ["store"],
        "note": "x" * pad,
    }


def flat_record(n: int, pad: int) -> dict[str, object]:
    """A small flat record (about 130 bytes of JSON): an event or a line of a change feed."""
    return {
        "id": n,
        "number": f"SO-{n:08d}",
        "status": ("open", "paid", "shipped", "cancelled")[n % 4],
        "amount": round(n * 1.37 % 10_000, 2),
        "updated_at": f"2026-01-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:00Z",
        "customer_id": n % 977,
    } | ({"note": "x" * pad} if pad else {})


SHAPES = {"order": record, "flat": flat_record}


def build_pages(
    pages: int, page_size: int, pad: int, base: str, shape: str = "order"
) -> list[bytes]:
    """Every page's full HTTP response (status line, headers, body), ready to send."""
    make = SHAPES[shape]
    responses = []
    for page in range(1, pages + 1):
        first = (page - 1) * page_size
        body = json.dumps([make(n, pad) for n in range(first, first + page_size)]).encode()
        headers = [
            "HTTP/1.1 200 OK",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
        ]
        if page < pages:
            headers.append(f'Link: <{base}/items?page={page + 1}>; rel="next"')
        responses.append(("\r\n".join(headers) + "\r\n\r\n").encode() + body)
    return responses


def _response(status: str, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    return head.encode() + b"\r\n\r\n" + body


ACCEPTED = [0]


def serve_connection(conn: socket.socket, pages: list[bytes]) -> None:
    """Answer requests on one keep-alive connection until the client closes it."""
    not_found = _response("404 Not Found", b'{"error":"not_found"}')
    token = _response("200 OK", TOKEN)
    buffer = b""
    with conn:
        while True:
            end = buffer.find(b"\r\n\r\n")
            while end < 0:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buffer += chunk
                end = buffer.find(b"\r\n\r\n")
            head, buffer = buffer[:end], buffer[end + 4 :]
            lines = head.split(b"\r\n")
            method, target, _ = lines[0].split(b" ", 2)
            length = 0
            for line in lines[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            while len(buffer) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            buffer = buffer[length:]  # a request body (the token request's form) is ignored
            if method == b"POST" and target.startswith(b"/token"):
                conn.sendall(token)
                continue
            path, _, query = target.partition(b"?")
            if path == b"/stats":
                conn.sendall(_response("200 OK", b'{"connections":%d}' % ACCEPTED[0]))
                continue
            number = 1
            for pair in query.split(b"&"):
                if pair.startswith(b"page="):
                    number = int(pair[5:])
            if path == b"/items" and 1 <= number <= len(pages):
                conn.sendall(pages[number - 1])
            else:
                conn.sendall(not_found)


def serve(pages: int, page_size: int, pad: int, port: int = 0, shape: str = "order") -> None:
    listener = socket.create_server(("127.0.0.1", port), backlog=64)
    port = listener.getsockname()[1]
    built = build_pages(pages, page_size, pad, f"http://127.0.0.1:{port}", shape)
    print(f"PORT {port}", flush=True)
    while True:
        conn, _ = listener.accept()
        ACCEPTED[0] += 1
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve_connection, args=(conn, built), daemon=True).start()


class PageServerProcess:
    """``serve`` in a child process; ``url`` is its base URL. Use as a context manager."""

    def __init__(
        self, pages: int, page_size: int = 100, pad: int = 0, shape: str = "order"
    ) -> None:
        self.pages, self.page_size = pages, page_size
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--pages", str(pages),
             "--page-size", str(page_size), "--pad", str(pad), "--shape", shape],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError("the page server did not start")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def raw_fetch_all(url: str, pages: int) -> int:
    """Every page over one raw keep-alive socket, no parsing: how fast the server alone is."""
    host, port = url.removeprefix("http://").split(":")
    total = 0
    with socket.create_connection((host, int(port))) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = conn.makefile("rb")
        for page in range(1, pages + 1):
            conn.sendall(f"GET /items?page={page} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            total += len(reader.read(length))
    return total


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--pad", type=int, default=0, help="extra bytes per record")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="order")
    args = parser.parse_args()
    serve(args.pages, args.page_size, args.pad, args.port, args.shape)
