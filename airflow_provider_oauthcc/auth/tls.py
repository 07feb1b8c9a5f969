"""TLS: why a handshake failed, in words a user can act on; one warning when verification is off.

Messages quote only OpenSSL's reason (e.g. "certificate verify failed: unable to get local
issuer certificate"), never a certificate, a key or a request.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings

import requests
from urllib3.exceptions import InsecureRequestWarning

from airflow_provider_oauthcc.auth.egress import UnsafeUrlError, target

log = logging.getLogger(__name__)

# "[SSL: CODE] reason (_ssl.c:N)", "[X509: CODE] ...", "[SSL] PEM lib (_ssl.c:N)"
_OPENSSL_REASON = re.compile(
    r"\[[A-Z0-9]+(?:: [A-Z0-9_]+)?\] ([^\[\]()]{1,200}?)(?: \(_ssl\.c:\d+\))"
)
_CLIENT_CERT_FIX = (
    "set 'client_cert' (and 'client_cert_key') to the PEM files of a certificate issued by "
    "a CA the server trusts, with auth_method 'tls_client_auth'"
)
_warned: set[str] = set()
_warned_lock = threading.Lock()


def handshake_failure(exc: requests.exceptions.SSLError, *, has_client_cert: bool) -> str:
    """What went wrong in a failed TLS handshake and the setting that fixes it."""
    text = str(exc)
    reason = _openssl_reason(text)
    lowered = text.lower()
    if "hostname mismatch" in lowered or "ip address mismatch" in lowered:
        return (
            f"its certificate is not issued for this host name ({reason}); use a host name "
            "the certificate lists in the URL ('verify' cannot fix a name mismatch)"
        )
    if "certificate has expired" in lowered or "certificate is not yet valid" in lowered:
        return f"its certificate is outside its validity period ({reason}); renew it"
    if "certificate verify failed" in lowered:
        return (
            f"its certificate is not signed by a CA this machine trusts ({reason}); set "
            "'verify' to the path of the CA bundle (PEM) that signed it"
        )
    if "certificate required" in lowered:
        return (
            f"the server asked for a client certificate and got none ({reason}); {_CLIENT_CERT_FIX}"
        )
    if has_client_cert and re.search(r"alert (unknown ca|bad certificate|certificate)", lowered):
        return (
            f"the server rejected the client certificate ({reason}); 'client_cert' must be "
            "issued by a CA the server trusts for client authentication"
        )
    if "pem lib" in lowered or "key values mismatch" in lowered:
        return (
            f"the client certificate or key cannot be used ({reason}); 'client_cert' must be a "
            "PEM certificate and 'client_cert_key' its unencrypted PEM private key"
        )
    if "wrong version number" in lowered or "record layer failure" in lowered:
        return (
            f"the server did not answer in TLS ({reason}); does the URL use https for an http port?"
        )
    if not has_client_cert and ("eof occurred" in lowered or "handshake failure" in lowered):
        return (
            f"the server broke off the handshake ({reason}); if it requires a client "
            f"certificate, {_CLIENT_CERT_FIX}"
        )
    return f"{reason}; check 'verify' (CA bundle) and, for mutual TLS, 'client_cert'"


def warn_if_unverified(verify: bool | str, url: str | None, peer: str) -> None:
    """Log once per process that ``peer`` at ``url`` is reached without certificate checks.

    Replaces urllib3's InsecureRequestWarning, which would repeat on every request, for that
    host only: the user chose ``verify: false`` and hears about it once, in the log.
    """
    if verify is not False or not url:
        return
    try:
        where = target(url)
    except UnsafeUrlError:
        return
    if not where.is_tls:
        return
    _silence_insecure_request_warning(where.host)
    origin = where.shown
    key = f"{peer} {origin}"
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning(
        "TLS certificate verification is off for the %s %s ('verify': false): anyone on the "
        "network path can pose as it. Set 'verify' to the CA bundle path instead.",
        peer,
        origin,
    )


def _silence_insecure_request_warning(host: str) -> None:
    """Put an ignore filter for this host's InsecureRequestWarning in front, unless the first
    filter that would handle it already is ours: a filter added later (``simplefilter``,
    ``catch_warnings``, pytest's recwarn) goes in front of ours and would otherwise win."""
    pattern = re.escape(f"Unverified HTTPS request is being made to host '{host}'")
    sample = f"Unverified HTTPS request is being made to host '{host}'."
    for action, message, category, module, lineno in warnings.filters:
        if not issubclass(InsecureRequestWarning, category):
            continue
        if message is not None and not message.match(sample):
            continue
        if module is not None and not module.match("urllib3.connectionpool"):
            continue
        if lineno:
            continue
        if action == "ignore" and getattr(message, "pattern", None) == pattern:
            return
        break
    warnings.filterwarnings("ignore", message=pattern, category=InsecureRequestWarning)


def _openssl_reason(text: str) -> str:
    match = _OPENSSL_REASON.search(text)
    if match:
        return match.group(1).strip().rstrip(".")
    for marker in ("EOF occurred in violation of protocol", "certificate verify failed"):
        if marker.lower() in text.lower():
            return marker
    return "TLS error"
