"""Per-request hooks shared by both servers: capture, counting and fault injection."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

from flask import Blueprint, Request, Response, g, request

from devserver.faults import Fault, FaultSet
from devserver.stats import CapturedRequest

_ERROR_BY_STATUS = {
    400: "invalid_request",
    403: "access_denied",
    429: "too_many_requests",
    500: "server_error",
    502: "bad_gateway",
    503: "temporarily_unavailable",
    504: "gateway_timeout",
}
_DESCRIPTION = "injected fault"
#: How long a reset response waits after its partial body before the connection is dropped,
#: so the server's writer sends that part first.
_RESET_FLUSH_S = 0.05


class InjectedReset(ConnectionError):
    """Raised by a reset fault's body: the server then drops the connection mid-body."""


def json_response(
    payload: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    body = json.dumps(payload, separators=(",", ":"))
    return Response(body, status=status, headers=headers, mimetype="application/json")


def fault_response(fault: Fault, target: str) -> Response:
    assert fault.status is not None
    status = fault.status
    if status < 400:  # a redirect: only its headers (Location) matter
        return Response(b"", status=status, headers=fault.headers)
    headers: dict[str, str] = {}
    if status == 401:
        error = "invalid_token" if target == "api" else "invalid_client"
        headers["WWW-Authenticate"] = (
            f'Bearer realm="devserver", error="invalid_token", error_description="{_DESCRIPTION}"'
            if target == "api"
            else 'Basic realm="devserver"'
        )
    else:
        error = _ERROR_BY_STATUS.get(status, "server_error" if status >= 500 else "invalid_request")
    if fault.retry_after is not None:
        headers["Retry-After"] = str(fault.retry_after)
    headers.update(fault.headers)
    if target == "token":
        headers["Cache-Control"] = "no-store"
    body = (
        fault.body
        if fault.body is not None
        else {"error": error, "error_description": _DESCRIPTION}
    )
    return json_response(body, status, headers)


def reset_response(response: Response) -> Response:
    """``response`` with its headers (``Content-Length`` of the whole body) but only the
    first half of its body; then the connection is dropped."""
    body = response.get_data()
    cut = len(body) // 2

    def partial() -> Iterator[bytes]:
        yield body[:cut]
        time.sleep(_RESET_FLUSH_S)
        raise InjectedReset(f"injected reset after {cut} of {len(body)} bytes")

    headers = response.headers.copy()
    headers["Content-Length"] = str(len(body))
    return Response(partial(), status=response.status_code, headers=headers)


def capture(req: Request, response: Response, client_id: str | None = None) -> CapturedRequest:
    return CapturedRequest(
        method=req.method,
        path=req.path,
        query_string=req.query_string.decode("latin-1"),
        headers=dict(req.headers),
        body=req.get_data(cache=True),
        form=req.form.to_dict() if req.mimetype == "application/x-www-form-urlencoded" else {},
        status=response.status_code,
        timestamp=time.time(),
        client_id=client_id,
        remote_port=int(req.environ.get("REMOTE_PORT") or 0) or None,
    )


def instrument(
    blueprint: Blueprint,
    faults: FaultSet,
    record: Callable[[Request, Response], None],
) -> None:
    """Apply ``faults`` to, and ``record`` every request of, ``blueprint``'s routes."""

    @blueprint.before_request
    def _before() -> Response | None:
        # Keep the raw body so it can be captured after the view parsed the form.
        request.get_data(cache=True)
        fault = faults.take()
        if fault is None:
            return None
        if fault.delay > 0:
            time.sleep(fault.delay)
        if fault.hold:
            fault.wait_here()
        if fault.status is not None:
            return fault_response(fault, faults.target)
        g.devserver_reset = fault.reset
        return None

    @blueprint.after_request
    def _after(response: Response) -> Response:
        record(request, response)
        if g.get("devserver_reset"):
            return reset_response(response)
        return response
