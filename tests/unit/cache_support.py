"""Helpers for the token cache unit tests: configs, tokens and a counting token client."""

from __future__ import annotations

import itertools
import time
from typing import Any

from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.token import Token

SECRET = "cache-test-secret-4b1d"
TOKEN_URL = "https://idp.example.com/oauth/token"


def config(**extra: Any) -> ClientConfig:
    extra.setdefault("auth_url", TOKEN_URL)
    secret = extra.pop("secret", SECRET)
    return ClientConfig.from_connection(client_id="app", client_secret=secret, extra=extra)


def token(value: str = "tok-value-0001", lifetime: float = 3600.0) -> Token:
    now = time.time()
    return Token(
        access_token=value, token_type="Bearer", expires_at=now + lifetime, obtained_at=now
    )


class CountingClient:
    """Stands in for TokenClient: hands out distinct tokens and counts the requests."""

    token_url = TOKEN_URL

    def __init__(self, lifetime: float = 3600.0, delay: float = 0.0) -> None:
        self.calls = 0
        self.lifetime = lifetime
        self.delay = delay
        self._serial = itertools.count(1)

    def fetch_token(self) -> Token:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        return token(f"tok-{next(self._serial):04d}-abcdefgh", self.lifetime)
