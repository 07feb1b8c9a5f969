"""HTTP control endpoints (``/_control/...``) for driving a dev server in another
process. Loopback callers only; no token needed; not counted as API requests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, abort, request

from devserver.faults import FaultSet
from devserver.instrument import json_response

if TYPE_CHECKING:
    from devserver.server import DevServer

LOOPBACK = frozenset({"127.0.0.1", "::1"})
_FAULT_FIELDS = (
    "status",
    "times",
    "every",
    "delay",
    "retry_after",
    "headers",
    "body",
    "reset",
)


def create_control_blueprint(server: DevServer) -> Blueprint:
    bp = Blueprint("control", __name__, url_prefix="/_control")

    @bp.before_request
    def loopback_only() -> None:
        if request.remote_addr not in LOOPBACK:
            abort(403)

    def json_body() -> dict[str, Any]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            abort(
                json_response(
                    {"error": "invalid_request", "error_description": "JSON object expected"}, 400
                )
            )
        return body

    def fault_set(target: object) -> FaultSet:
        if target == "api":
            return server.api_faults
        if target == "token":
            return server.token_faults
        abort(
            json_response(
                {
                    "error": "invalid_request",
                    "error_description": "target must be 'api' or 'token'",
                },
                400,
            )
        )

    @bp.get("/stats")
    def stats() -> Response:
        return json_response(server.stats.snapshot())

    @bp.get("/faults")
    def list_faults() -> Response:
        return json_response(
            {
                "api": [f.to_dict() for f in server.api_faults.pending],
                "token": [f.to_dict() for f in server.token_faults.pending],
            }
        )

    @bp.post("/faults")
    def add_fault() -> Response:
        """Body: ``{"target": "api"|"token", "status": 503, "times": 2, ...}``
        with the keyword arguments of ``FaultSet.add``."""
        body = json_body()
        faults = fault_set(body.get("target", "api"))
        try:
            fault = faults.add(**{k: body[k] for k in _FAULT_FIELDS if k in body})
        except (TypeError, ValueError) as exc:
            return json_response({"error": "invalid_request", "error_description": str(exc)}, 400)
        return json_response({"target": faults.target, **fault.to_dict()}, 201)

    @bp.delete("/faults")
    def clear_faults() -> Response:
        target = request.args.get("target")
        for faults in (server.api_faults, server.token_faults):
            if target in (None, faults.target):
                faults.clear()
        return Response(status=204)

    @bp.post("/reset")
    def reset() -> Response:
        server.reset()
        return Response(status=204)

    @bp.post("/revoke")
    def revoke() -> Response:
        return json_response({"revoked": server.revoke_all_tokens()})

    @bp.put("/dataset")
    def dataset() -> Response:
        size = json_body().get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            return json_response(
                {"error": "invalid_request", "error_description": "size must be an integer >= 0"},
                400,
            )
        server.dataset_size = size
        return json_response({"size": size})

    return bp
