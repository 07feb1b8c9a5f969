"""The deployment secret: mixed into every keyed digest and cache encryption key.

Whoever can read a shared cache (Redis is often the Celery broker too) but lacks this secret
cannot test guesses of a human-chosen client secret offline against what is stored there. The
Airflow adapters install Airflow's ``[core] fernet_key`` here; without one, a fixed value is
used and the protection rests on the client credential alone.
"""

from __future__ import annotations

import hashlib
import hmac
import threading

_FALLBACK = b"airflow-provider-oauthcc: no deployment secret"
_secret = _FALLBACK
_lock = threading.Lock()


def set_deployment_secret(secret: str | bytes | None) -> None:
    global _secret
    value = secret.encode() if isinstance(secret, str) else secret
    with _lock:
        _secret = value or _FALLBACK


def deployment_secret() -> bytes:
    return _secret


def keyed_digest(purpose: str, data: bytes) -> str:
    """HMAC-SHA256 of ``data`` under the deployment secret, separated by ``purpose``."""
    key = hmac.new(_secret, purpose.encode(), hashlib.sha256).digest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()
