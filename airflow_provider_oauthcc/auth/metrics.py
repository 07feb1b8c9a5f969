"""Token and request-budget metrics, sent to whatever recorder the Airflow adapter installs (none by default).

The core does not import Airflow: the hook installs Airflow's ``Stats`` here, as it installs
``mask_secret`` in :mod:`masking`.
"""

from __future__ import annotations

import logging
from typing import Protocol

FETCH = "oauthcc.token.fetch"
FETCH_ERROR = "oauthcc.token.fetch_error"
FETCH_LATENCY = "oauthcc.token.fetch_latency"
CACHE_HIT = "oauthcc.token.cache_hit"
CACHE_MISS = "oauthcc.token.cache_miss"
CACHE_ERROR = "oauthcc.token.cache_error"
BUDGET_WAIT = "oauthcc.budget.wait"
BUDGET_PAUSE = "oauthcc.budget.pause"
BUDGET_STORE_ERROR = "oauthcc.budget.store_error"

log = logging.getLogger(__name__)


class MetricsRecorder(Protocol):
    def incr(self, name: str) -> None: ...

    def timing(self, name: str, seconds: float) -> None: ...


_recorder: MetricsRecorder | None = None


def set_recorder(recorder: MetricsRecorder | None) -> None:
    global _recorder
    _recorder = recorder


def incr(name: str) -> None:
    if _recorder is not None:
        try:
            _recorder.incr(name)
        except Exception:  # a metrics backend never fails a token request
            log.debug("metrics recorder failed on %s", name, exc_info=True)


def timing(name: str, seconds: float) -> None:
    if _recorder is not None:
        try:
            _recorder.timing(name, seconds)
        except Exception:
            log.debug("metrics recorder failed on %s", name, exc_info=True)
