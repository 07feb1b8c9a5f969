"""Register secrets with a log masker the moment they are known.

The core does not import Airflow: the Airflow adapters install Airflow's ``mask_secret`` here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

_masker: Callable[[str], None] | None = None
_masked: set[str] = set()
_lock = threading.Lock()


def set_masker(masker: Callable[[str], None] | None) -> None:
    global _masker
    with _lock:
        _masker = masker
        _masked.clear()


def mask(*secrets: str | None) -> None:
    """Mask each secret once per process (Airflow's masker also tells the supervisor: not free)."""
    if _masker is None:
        return
    for secret in secrets:
        if not secret:
            continue
        with _lock:
            if secret in _masked:
                continue
            _masked.add(secret)
        _masker(secret)
