"""Register secrets with a log masker the moment they are known.

The core does not import Airflow: the Airflow adapters install Airflow's ``mask_secret`` (and,
where Airflow has it, ``amask_secret`` for event loops) here.

Airflow's masker compiles one regular expression over every value it was ever given, again for
each new value, and keeps them for the life of the process: in a triggerer that serves many
connections, each token lifetime adds new ones. So a JWT (a token or a client assertion) is
registered by its signature alone: without it the rest is readable claims and cannot be used,
and the pattern is a third of the length.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable

_masker: Callable[[str], None] | None = None
_async_masker: Callable[[str], Awaitable[None]] | None = None
_masked: set[str] = set()
_lock = threading.Lock()
_MIN_SIGNATURE = 16


def set_masker(
    masker: Callable[[str], None] | None,
    async_masker: Callable[[str], Awaitable[None]] | None = None,
) -> None:
    global _masker, _async_masker
    with _lock:
        _masker = masker
        _async_masker = async_masker
        _masked.clear()


def mask(*secrets: str | None) -> None:
    """Mask each secret once per process (Airflow's masker also tells the supervisor: not free)."""
    if _masker is None:
        return
    for secret in _new(secrets):
        _masker(secret)


async def amask(*secrets: str | None) -> None:
    """``mask`` for an event loop: Airflow's async masker talks to the supervisor without
    blocking the loop (a blocking send there can deadlock with one already in flight)."""
    masker = _async_masker
    if masker is None:
        mask(*secrets)
        return
    for secret in _new(secrets):
        await masker(secret)


def bearer_part(value: str) -> str:
    """What must be masked of a token or client assertion: a JWT's signature, else all."""
    parts = value.split(".")
    if len(parts) == 3 and len(parts[2]) >= _MIN_SIGNATURE:
        return parts[2]
    return value


def _new(secrets: tuple[str | None, ...]) -> list[str]:
    fresh = []
    with _lock:
        for secret in secrets:
            if secret and secret not in _masked:
                _masked.add(secret)
                fresh.append(secret)
    return fresh
