"""Scrub secrets out of text that came from a server or an exception, then cut it.

Servers echo what they were sent, in the form they received it: raw, URL-encoded (a form body),
base64 (a Basic header), JSON-escaped. Every form of every secret is replaced *before* the text
is cut, so that a cut cannot leave a piece of a secret that no longer matches.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "***"
DEFAULT_LIMIT = 300


def secret_forms(secrets: Iterable[str], client_id: str | None = None) -> tuple[str, ...]:
    """Every form in which a server may send one of ``secrets`` back, longest first."""
    forms: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        texts = [secret]
        if client_id is not None:
            texts += [
                f"{client_id}:{secret}",
                f"{quote(client_id, safe='')}:{quote(secret, safe='')}",
            ]
        for text in texts:
            forms.add(text)
            raw = text.encode("utf-8", "surrogatepass")
            for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
                forms.add(encoded.decode())
                forms.add(encoded.decode().rstrip("="))
        forms.update({quote(secret, safe=""), quote_plus(secret, safe=""), quote(secret)})
        forms.add(json.dumps(secret)[1:-1])
        # A multi-line secret (a PEM key) may come back one line at a time.
        forms.update(line.strip() for line in secret.splitlines() if len(line.strip()) >= 16)
    # Forms too short to be told from ordinary text would garble messages, not protect anything.
    return tuple(sorted((f for f in forms if len(f) >= 4), key=len, reverse=True))


def scrub(text: str, forms: Iterable[str], limit: int | None = DEFAULT_LIMIT) -> str:
    """``text`` with every form replaced by ``***``, then cut to ``limit`` characters."""
    for form in forms:
        if form in text:
            text = text.replace(form, MASK)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return text
