"""A change feed: records appended by a control call, read after a cursor.

``GET /v1/changes?since=<cursor>&limit=N`` (token required) returns the records appended after
``since`` (all of them without it), at most ``limit``, and the cursor of the last one returned:
``{"records": [...], "next_cursor": "7", "has_more": false}``. With nothing new, ``records`` is
empty and ``next_cursor`` is ``since`` again. Cursors are the records' sequence numbers, as
text: opaque to a client.

``POST /_control/feed`` with ``{"count": 3}`` appends records (loopback only, like every control
call) and returns their cursors; ``GET /_control/feed`` returns everything appended so far, for
tests to compare with what was pulled.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from flask import Blueprint, Response, request

from devserver.instrument import json_response

MAX_LIMIT = 10_000


class ChangeFeed:
    """Records with sequence numbers 1, 2, 3 ...; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []

    def append(self, count: int) -> list[dict[str, Any]]:
        with self._lock:
            start = len(self._records)
            added = [
                {"seq": n, "id": f"change-{n}", "appended_at": round(time.time(), 3)}
                for n in range(start + 1, start + count + 1)
            ]
            self._records.extend(added)
            return added

    def after(self, since: int, limit: int) -> tuple[list[dict[str, Any]], bool]:
        with self._lock:
            rest = self._records[since:]
        return rest[:limit], len(rest) > limit

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


def add_feed_routes(api: Blueprint, feed: ChangeFeed) -> None:
    """The feed's endpoint on the API blueprint (behind its token check and fault injection)."""

    @api.get("/v1/changes")
    def changes() -> Response:
        since_arg = request.args.get("since") or "0"
        limit_arg = request.args.get("limit") or "100"
        if (
            not since_arg.isdigit()
            or not limit_arg.isdigit()
            or not 1 <= int(limit_arg) <= MAX_LIMIT
        ):
            body = {
                "error": "invalid_request",
                "error_description": f"since must be a cursor and limit 1..{MAX_LIMIT}",
            }
            return json_response(body, 400)
        since = int(since_arg)
        records, more = feed.after(since, int(limit_arg))
        next_cursor = str(records[-1]["seq"]) if records else str(since)
        return json_response({"records": records, "next_cursor": next_cursor, "has_more": more})


def add_feed_control(control: Blueprint, feed: ChangeFeed) -> None:
    @control.post("/feed")
    def append() -> Response:
        body = request.get_json(silent=True) or {}
        count = body.get("count", 1) if isinstance(body, dict) else None
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_LIMIT:
            body = {"error": "invalid_request", "error_description": "count must be 0..10000"}
            return json_response(body, 400)
        added = feed.append(count)
        return json_response({"cursors": [str(r["seq"]) for r in added]}, 201)

    @control.get("/feed")
    def everything() -> Response:
        return json_response({"records": feed.all()})
