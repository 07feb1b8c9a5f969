"""The protected API: bearer-token validation and one endpoint per pagination style.

Every list endpoint takes ``updated_since`` / ``updated_before`` (ISO 8601, the
first inclusive, the second exclusive), ``pad`` (length of each record's ``pad``
string) and a page size; next-page links keep all other query parameters.

Export jobs (see ``devserver.exports``): ``POST /v1/exports`` starts one, ``GET
/v1/exports/<id>`` tells its status, ``GET /v1/exports/<id>/download`` pages its records
(``limit``, ``Link`` header) once it is done, or serves them as one streamed NDJSON or CSV
file (``format``, ``gzip``, ``pad``; ``pace`` s between its chunks; ``length=1``: sent with a
``Content-Length`` header, as a stored file is, instead of chunked; ``cut=N``: its last N
bytes left off, the answer otherwise whole). ``GET /v1/sleep?seconds=S``
answers after S s.
"""

from __future__ import annotations

import base64
import binascii
import math
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, Request, Response, g, request

from devserver.dataset import Dataset, make_record, parse_timestamp
from devserver.dpop import DPoPError, DPoPVerifier, challenge_headers
from devserver.exports import FILE_CHUNK, FILE_FORMATS, ExportJob, ExportJobs, export_file, paced
from devserver.faults import FaultSet
from devserver.instrument import capture, instrument, json_response
from devserver.mtls import presented_certificate_thumbprint
from devserver.rate_limit import ApiRateLimit
from devserver.rate_limit import install as install_rate_limit
from devserver.stats import Stats
from devserver.tokens import AccessTokenVerifier, InvalidTokenError

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 100_000
REALM = "devserver"


class ApiError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


def _bad_request(description: str) -> ApiError:
    return ApiError(400, "invalid_request", description)


def _int_arg(name: str, default: int, minimum: int, maximum: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad_request(f"{name} must be an integer") from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f">= {minimum}" + (f" and <= {maximum}" if maximum is not None else "")
        raise _bad_request(f"{name} must be {bounds}")
    return value


def _page_size(name: str) -> int:
    return _int_arg(name, DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)


def _time_arg(name: str) -> datetime | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        return parse_timestamp(raw)
    except ValueError:
        raise _bad_request(f"{name} must be an ISO 8601 timestamp") from None


def _url_with(**changes: object) -> str:
    """This request's absolute URL with some query parameters replaced."""
    args = request.args.to_dict(flat=False)
    for name, value in changes.items():
        args[name] = [str(value)]
    return f"{request.base_url}?{urlencode(args, doseq=True)}"


def _encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"after:{last_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = text.partition(":")
        if prefix != "after":
            raise ValueError(cursor)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _bad_request("invalid cursor") from None


def _unauthorized(error: str | None, description: str) -> Response:
    challenge = f'Bearer realm="{REALM}"'
    if error:  # RFC 6750 3.1: no error code when the request had no credentials
        challenge += f', error="{error}", error_description="{description}"'
    body = {"error": error or "unauthorized", "error_description": description}
    return json_response(body, 401, {"WWW-Authenticate": challenge})


def sender_constraint_refusal(
    dpop: DPoPVerifier, scheme: str, token: str, claims: dict[str, Any]
) -> Response | None:
    """A bound token is usable only by its holder: the DPoP key (``cnf.jkt``, proof checked)
    or the TLS client certificate (``cnf.x5t#S256``). None when the request may go on."""
    cnf = claims.get("cnf") if isinstance(claims.get("cnf"), dict) else {}
    jkt = cnf.get("jkt")
    if scheme == "dpop" or jkt:
        if scheme != "dpop" or not jkt:
            description = "DPoP-bound token sent as Bearer" if jkt else "token is not DPoP-bound"
            return _unauthorized("invalid_token", description)
        try:
            dpop.verify(
                request.headers.get("DPoP"),
                request.method,
                request.base_url,
                access_token=token,
                jkt=jkt,
            )
        except DPoPError as exc:
            body = {"error": exc.error, "error_description": exc.description}
            return json_response(body, 401, challenge_headers(dpop, exc))
    bound_to = cnf.get("x5t#S256")
    if bound_to and presented_certificate_thumbprint() != bound_to:
        return _unauthorized(
            "invalid_token", "certificate-bound token without its client certificate"
        )
    return None


def create_api_blueprint(
    *,
    verifier: AccessTokenVerifier,
    dataset: Dataset,
    stats: Stats,
    faults: FaultSet,
    exports: ExportJobs | None = None,
    dpop: DPoPVerifier | None = None,
    rate_limit: ApiRateLimit | None = None,
) -> Blueprint:
    jobs = exports if exports is not None else ExportJobs()
    dpop = dpop or DPoPVerifier()
    bp = Blueprint("api", __name__)

    def record(req: Request, response: Response) -> None:
        stats.record_api_request(capture(req, response))

    instrument(bp, faults, record)

    @bp.before_request
    def authenticate() -> Response | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() not in ("bearer", "dpop") or not token.strip():
            return _unauthorized(None, "bearer token required")
        try:
            g.claims = verifier.verify(token.strip())
        except InvalidTokenError as exc:
            return _unauthorized("invalid_token", exc.description)
        return sender_constraint_refusal(dpop, scheme.lower(), token.strip(), g.claims)

    if rate_limit is not None:
        install_rate_limit(bp, rate_limit)  # after the token check: it limits per client

    @bp.errorhandler(ApiError)
    def api_error(exc: ApiError) -> Response:
        return json_response({"error": exc.error, "error_description": exc.description}, exc.status)

    def window() -> range:
        return dataset.window(_time_arg("updated_since"), _time_arg("updated_before"))

    def records(ids: range) -> list[dict[str, Any]]:
        pad = _int_arg("pad", 0, 0)
        return [make_record(i, pad) for i in ids]

    def page_after(limit_arg: str, after: int) -> tuple[range, bool]:
        """The page following id ``after`` and whether more records follow it."""
        ids = window()
        rest = range(max(ids.start, after + 1), ids.stop)
        page = rest[: _page_size(limit_arg)]
        return page, len(page) < len(rest)

    # /v1/items: the README's quick-start endpoint, run as written against this server.
    @bp.get("/v1/items")
    @bp.get("/v1/link/items")
    def link_items() -> Response:
        page, more = page_after("limit", _int_arg("after", 0, 0))
        headers = {"Link": f'<{_url_with(after=page[-1])}>; rel="next"'} if more else None
        return json_response(records(page), headers=headers)

    @bp.get("/v1/next/items")
    def next_items() -> Response:
        page, more = page_after("limit", _int_arg("after", 0, 0))
        next_url = _url_with(after=page[-1]) if more else None
        return json_response({"data": records(page), "next": next_url})

    @bp.get("/v1/cursor/items")
    def cursor_items() -> Response:
        cursor = request.args.get("cursor")
        page, more = page_after("limit", _decode_cursor(cursor) if cursor else 0)
        next_cursor = _encode_cursor(page[-1]) if more else None
        return json_response({"items": records(page), "next_cursor": next_cursor})

    @bp.get("/v1/page/items")
    def page_items() -> Response:
        page_number = _int_arg("page", 1, 1)
        per_page = _page_size("per_page")
        ids = window()
        page = ids[(page_number - 1) * per_page : page_number * per_page]
        total_pages = math.ceil(len(ids) / per_page)
        return json_response(
            {"data": records(page), "page": page_number, "total_pages": total_pages}
        )

    @bp.get("/v1/offset/items")
    def offset_items() -> Response:
        offset = _int_arg("offset", 0, 0)
        ids = window()
        page = ids[offset : offset + _page_size("limit")]
        return json_response({"results": records(page), "total": len(ids)})

    @bp.get("/v1/whoami")
    def whoami() -> Response:
        return json_response(g.claims)

    @bp.route("/v1/echo", methods=["POST", "PUT", "PATCH"])
    def echo() -> Response:
        return json_response(
            {
                "method": request.method,
                "content_type": request.content_type,
                "args": request.args.to_dict(flat=False),
                "json": request.get_json(silent=True) if request.is_json else None,
                "form": request.form.to_dict(flat=False),
                "body": request.get_data(as_text=True),
            }
        )

    @bp.get("/v1/sleep")
    def sleep() -> Response:
        seconds = _float_arg("seconds", 1.0, 0.0, 30.0)
        time.sleep(seconds)
        return json_response({"slept": seconds})

    @bp.post("/v1/exports")
    def create_export() -> Response:
        params = request.get_json(silent=True) if request.is_json else request.form.to_dict()
        if not isinstance(params, dict):
            raise _bad_request("the body must be a JSON object or a form")
        job = jobs.create(
            ready_after=_float_param(params, "ready_after"),
            fail=str(params.get("fail", "")).lower() in ("1", "true", "yes"),
            updated_since=_time_param(params, "updated_since"),
            updated_before=_time_param(params, "updated_before"),
        )
        return json_response(export_status(job), 202)

    @bp.get("/v1/exports/<job_id>")
    def export(job_id: str) -> Response:
        job = find_export(job_id)
        response = json_response(export_status(job))
        job.polled()
        return response

    @bp.get("/v1/exports/<job_id>/download")
    def download_export(job_id: str) -> Response:
        job = find_export(job_id)
        if job.status != "done":
            raise ApiError(409, "not_ready", f"export {job.id} is {job.status}")
        ids = dataset.window(job.updated_since, job.updated_before)
        if request.args.get("format"):
            return export_file_response(ids)
        after = _int_arg("after", 0, 0)
        rest = range(max(ids.start, after + 1), ids.stop)
        page = rest[: _page_size("limit")]
        more = len(page) < len(rest)
        headers = {"Link": f'<{_url_with(after=page[-1])}>; rel="next"'} if more else None
        return json_response(records(page), headers=headers)

    def export_file_response(ids: range) -> Response:
        file_format = request.args.get("format", "")
        if file_format not in FILE_FORMATS:
            raise _bad_request(f"format must be one of {', '.join(FILE_FORMATS)}")
        gzip = request.args.get("gzip", "")
        if gzip not in ("", "file", "encoding"):
            raise _bad_request("gzip must be file or encoding")
        pad = _int_arg("pad", 0, 0)
        pace = _float_arg("pace", 0.0, 0.0, 1.0)
        body = export_file((make_record(i, pad) for i in ids), file_format, gzip=bool(gzip))
        headers = {"Content-Encoding": "gzip"} if gzip == "encoding" else {}
        cut = _int_arg("cut", 0, 0)  # bytes left off the end (a file cut short)
        if request.args.get("length") or cut:
            whole = b"".join(body)
            whole = whole[: len(whole) - cut]
            headers["Content-Length"] = str(len(whole))
            body = (whole[at : at + FILE_CHUNK] for at in range(0, len(whole), FILE_CHUNK))
        if pace:
            body = paced(body, pace)
        mimetype = "application/gzip" if gzip == "file" else FILE_FORMATS[file_format]
        return Response(body, headers=headers, mimetype=mimetype)

    def find_export(job_id: str) -> ExportJob:
        job = jobs.get(job_id)
        if job is None:
            jobs.missed(job_id)
            raise ApiError(404, "not_found", f"no export {job_id}")
        return job

    def export_status(job: ExportJob) -> dict[str, Any]:
        root = request.host_url.rstrip("/")
        status: dict[str, Any] = {"id": job.id, "status": job.status}
        if job.status == "done":
            status["download"] = f"{root}/v1/exports/{job.id}/download"
        elif job.status == "failed":
            status["error"] = "the export failed"
        return status

    return bp


def _float_arg(name: str, default: float, minimum: float, maximum: float) -> float:
    raw = request.args.get(name)
    value = default if raw in (None, "") else _float_value(name, raw)
    if not minimum <= value <= maximum:
        raise _bad_request(f"{name} must be between {minimum:g} and {maximum:g}")
    return value


def _float_param(params: dict[str, Any], name: str) -> float | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    value = _float_value(name, raw)
    if value < 0:
        raise _bad_request(f"{name} must be >= 0")
    return value


def _float_value(name: str, raw: object) -> float:
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise _bad_request(f"{name} must be a number") from None
    if not math.isfinite(value):
        raise _bad_request(f"{name} must be a number")
    return value


def _time_param(params: dict[str, Any], name: str) -> datetime | None:
    raw = params.get(name)
    if not raw:
        return None
    try:
        return parse_timestamp(str(raw))
    except ValueError:
        raise _bad_request(f"{name} must be an ISO 8601 timestamp") from None


def create_api_app(api: Blueprint, control: Blueprint | None = None) -> Flask:
    app = Flask("devserver.api")
    app.register_blueprint(api)
    if control is not None:
        app.register_blueprint(control)
    return app
