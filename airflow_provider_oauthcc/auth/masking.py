"""Keep secrets out of logs at a cost that does not grow with the life of the process.

The core does not import Airflow: the Airflow adapters install Airflow's ``mask_secret`` (and,
where Airflow has it, ``amask_secret`` for event loops) here.

Two kinds of secret, two mechanisms (``docs/security.md``, "What is masked where"):

- Long-lived secrets (client secret, private key, passphrase, proxy password): ``mask`` hands
  them to Airflow's masker, once per process. They are few and change rarely.
- Rotating credentials (access tokens, client assertions): ``mask_token`` / ``hold_token``
  hold them in ``LIVE``, a bounded set of the values still valid, each forgotten at its expiry,
  applied to the HTTP client libraries' loggers. Airflow's masker compiles one regular
  expression over every value it was ever given, again for each new one, and never forgets:
  fed every token a long-running triggerer sees, each refresh would cost more CPU than the last.
  So it gets tokens only on the synchronous path (``mask_token``), which runs in task processes
  (they end with their task) and never in the triggerer; there a JWT goes by its signature
  alone, without which the rest is readable claims and cannot be used.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from airflow_provider_oauthcc.auth.live_secrets import (
    LiveSecrets,
    LiveSecretsFilter,
    install_filter,
)

_masker: Callable[[str], None] | None = None
_async_masker: Callable[[str], Awaitable[None]] | None = None
#: The long-lived secrets already handed to the masker (bounded: one forgotten is only sent again).
_masked: OrderedDict[str, None] = OrderedDict()
_MASKED_LIMIT = 1024
_lock = threading.Lock()
_MIN_SIGNATURE = 16

LIVE = LiveSecrets()
LOG_FILTER = LiveSecretsFilter(LIVE)
install_filter(LOG_FILTER)


def set_masker(
    masker: Callable[[str], None] | None,
    async_masker: Callable[[str], Awaitable[None]] | None = None,
) -> None:
    global _masker, _async_masker
    with _lock:
        _masker = masker
        _async_masker = async_masker
        _masked.clear()
    LIVE.clear()


def mask(*secrets: str | None) -> None:
    """Hand each long-lived secret to the masker, once per process (Airflow's masker also
    tells the supervisor: not free). Not for tokens: see ``mask_token``."""
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


def mask_token(token: str, expires_at: float) -> None:
    """A token or client assertion on the synchronous path (a task process): held in ``LIVE``
    until ``expires_at``, and its signature (or all of it) handed to the masker once."""
    if LIVE.add(token, expires_at) and _masker is not None:
        _masker(bearer_part(token))


def hold_token(token: str, expires_at: float) -> None:
    """A token or client assertion on an event loop (the triggerer, which runs for weeks):
    held in ``LIVE`` until ``expires_at``, never handed to the masker."""
    LIVE.add(token, expires_at)


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
            if not secret:
                continue
            if secret in _masked:
                _masked.move_to_end(secret)
                continue
            _masked[secret] = None
            fresh.append(secret)
            if len(_masked) > _MASKED_LIMIT:
                _masked.popitem(last=False)
    return fresh
