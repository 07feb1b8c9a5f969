"""Leak scans: the secret values a run handled, and where any of them shows up in its output.

``secrets_seen_by(srv)`` collects, from a ``DevServer``'s captures, every credential that
crossed the wire (client secrets in a Basic header or a form, client assertions, access
tokens, and every token the server issued); ``pem_material`` and ``jwt_parts`` add the forms
a partial leak would take (one base64 line of a key, one segment of a JWT). ``find_leaks``
reports each (source, line, kind) where one of them appears, never the value itself.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devserver import DevServer

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
COMPACT_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
#: Any three base64url segments joined by dots: a JWS in compact form, whatever its header.
THREE_PART = re.compile(
    r"(?<![A-Za-z0-9_-])([A-Za-z0-9_-]{4,})\.([A-Za-z0-9_-]{4,})\.([A-Za-z0-9_-]{4,})"
)
#: A base64url run that starts like an encoded JSON object (``{"``, ``{ `` or ``{\n``).
JSON_SEGMENT = re.compile(r"(?<![A-Za-z0-9_-])e(?:yJ|yA|wo)[A-Za-z0-9_-]{13,}")
#: Shorter fragments (the last line of a PEM, say) would match by chance.
MIN_FRAGMENT = 16


#: Airflow 3.0's ``airflow dags test`` prints debug output, in which its in-process test
#: supervisor logs each message the task sends it, the values handed to the secrets masker
#: included (``Sending request msg=MaskSecret(value=...)``; Airflow masks the connection's
#: password this way itself). Real task runs are not affected: the supervisor logs those
#: messages with their body omitted. docs/versions.md says so.
AIRFLOW_30_MASK_REQUEST = re.compile(
    r"^[^\n]*\[debug\s*\] Sending request\s+msg=MaskSecret\(value=[^\n]*\n?", re.MULTILINE
)


def without_airflow_30_mask_requests(output: str) -> str:
    """``output`` without the lines above when this is Airflow 3.0; unchanged otherwise."""
    from importlib.metadata import version

    if not version("apache-airflow").startswith("3.0."):
        return output
    return AIRFLOW_30_MASK_REQUEST.sub("", ANSI_ESCAPE.sub("", output))


@dataclass(frozen=True)
class Secret:
    kind: str  # "client secret", "private key", "client assertion", "access token", ...
    value: str


@dataclass(frozen=True)
class Leak:
    source: str
    line: int
    kind: str

    def __str__(self) -> str:
        return f"{self.kind} in {self.source}, line {self.line}"


def pem_material(pem: str) -> list[Secret]:
    """The PEM, and each of its base64 lines."""
    lines = [line.strip() for line in pem.strip().splitlines() if "-----" not in line]
    return [Secret("private key", pem.strip())] + [
        Secret("private key (one base64 line)", line) for line in lines if len(line) >= MIN_FRAGMENT
    ]


def jwt_parts(kind: str, token: str) -> list[Secret]:
    """A JWT, and its payload and signature segments (each unique to this token)."""
    parts = [Secret(kind, token)]
    segments = token.split(".")
    if len(segments) == 3:
        parts += [
            Secret(f"{kind} (segment)", segment)
            for segment in segments[1:]
            if len(segment) >= MIN_FRAGMENT
        ]
    return parts


def secrets_seen_by(srv: DevServer) -> list[Secret]:
    """Every credential the server received or issued, in every form worth looking for."""
    found: list[Secret] = []
    for request in srv.stats.token_captures:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic" and credentials:
            found.append(Secret("client secret (Basic credentials)", credentials.strip()))
        if request.form.get("client_secret"):
            found.append(Secret("client secret", request.form["client_secret"]))
        if request.form.get("client_assertion"):
            found += jwt_parts("client assertion", request.form["client_assertion"])
        if request.form.get("assertion"):  # the JWT-bearer grant's
            found += jwt_parts("grant assertion", request.form["assertion"])
        if proof := _dpop_header(request.headers):
            found += jwt_parts("DPoP proof", proof)
    for request in srv.stats.api_captures:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() in ("bearer", "dpop") and token:
            found += jwt_parts("access token", token.strip())
        if proof := _dpop_header(request.headers):
            found += jwt_parts("DPoP proof", proof)
    for token in srv.tokens.issued_tokens:
        found += jwt_parts("access token", token)
    return found


def _dpop_header(headers: Mapping[str, str]) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == "dpop"), None)


def read_texts(paths: Iterable[Path], root: Path) -> dict[str, str]:
    """``{path relative to root: text}`` for each file."""
    return {str(p.relative_to(root)): p.read_text(errors="replace") for p in sorted(paths)}


def find_leaks(
    texts: Mapping[str, str],
    secrets: Iterable[Secret],
    *,
    issuers: Iterable[str] = (),
    ignore_line: Callable[[str], bool] | None = None,
    allow_jwt: Callable[[dict[str, Any]], bool] | None = None,
) -> list[Leak]:
    """Each place a secret appears, each JWT whose ``iss`` is one of ``issuers``, and each
    value shaped like a JWT (see ``jwt_shapes``), whoever issued it.

    Colour codes are removed first (a value split by them still counts). Lines for which
    ``ignore_line`` is true are skipped. ``allow_jwt`` gets the claims of each JWT found by
    shape (``{}`` if its payload is not JSON) and may set aside one that is not a credential
    of this provider (none is allowed by default).
    """
    by_value: dict[str, str] = {}
    for secret in secrets:
        by_value.setdefault(secret.value, secret.kind)
    known_issuers = set(issuers)
    leaks: list[Leak] = []
    for source, text in texts.items():
        for number, line in enumerate(ANSI_ESCAPE.sub("", text).splitlines(), start=1):
            if ignore_line is not None and ignore_line(line):
                continue
            kinds = {kind for value, kind in by_value.items() if value in line}
            for candidate in COMPACT_JWT.findall(line):
                issuer = jwt_issuer(candidate)
                if issuer is not None and issuer in known_issuers:
                    kinds.add(f"JWT issued by or for {issuer}")
            kinds |= jwt_shapes(line, known_issuers, allow_jwt)
            leaks += [Leak(source, number, kind) for kind in sorted(kinds)]
    return leaks


def jwt_shapes(
    line: str,
    issuers: set[str],
    allow_jwt: Callable[[dict[str, Any]], bool] | None = None,
) -> set[str]:
    """What in ``line`` looks like a JWT, by shape rather than by value:

    - three base64url segments joined by dots whose first decodes to a JSON object with an
      ``alg`` (a JWS header): any such token, whoever issued it, unless ``allow_jwt`` allows
      its claims;
    - a lone base64url segment that decodes to a JSON object whose ``iss`` or ``sub`` is one
      of ``issuers`` (a token's payload, cut from its header and signature).
    """
    kinds: set[str] = set()
    for header, payload, _ in THREE_PART.findall(line):
        decoded = _json_object(header)
        if decoded is None or "alg" not in decoded:
            continue
        claims = _json_object(payload) or {}
        if allow_jwt is None or not allow_jwt(claims):
            kinds.add("a JWT (by shape)")
    for segment in JSON_SEGMENT.findall(line):
        payload_claims = _json_object(segment)
        if payload_claims is None:
            continue
        for claim in ("iss", "sub"):
            value = payload_claims.get(claim)
            if isinstance(value, str) and value in issuers:
                kinds.add(f"JWT payload issued by or for {value} (by shape)")
    return kinds


def _json_object(segment: str) -> dict[str, Any] | None:
    try:
        data = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def jwt_issuer(token: str) -> str | None:
    """The ``iss`` claim of a compact JWT, unverified; None if it is not one."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error, UnicodeDecodeError):
        return None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return issuer if isinstance(issuer, str) else None
