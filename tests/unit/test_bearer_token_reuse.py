"""BearerAuth reuses its token from page to page, and still renews it when it must: at the
token's early refresh, and after the API rejected it."""

from __future__ import annotations

from collections import deque

import pytest
import requests

from airflow_provider_oauthcc.auth import token as token_module
from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.requests_auth import BearerAuth
from airflow_provider_oauthcc.auth.token import Token
from tests.support.canned_http import Canned, CannedServer

NOW = 1_000_000.0
LIFETIME = 3600.0


def issued(access_token: str, at: float = NOW) -> Token:
    return Token(access_token, "Bearer", expires_at=at + LIFETIME, obtained_at=at)


class ScriptedProvider:
    """Hands out the scripted tokens in turn; counts reads and invalidations."""

    def __init__(self, *tokens: Token) -> None:
        self.config = ClientConfig.from_connection(
            client_id="app", client_secret="pw", extra={"auth_url": "https://idp.example/token"}
        )
        self.tokens = deque(tokens)
        self.current = self.tokens.popleft()
        self.reads = 0
        self.invalidated: list[str] = []

    def get_token(self) -> Token:
        self.reads += 1
        return self.current

    def invalidate(self, token: Token) -> None:
        self.invalidated.append(token.access_token)
        if token is self.current and self.tokens:
            self.current = self.tokens.popleft()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [NOW]
    monkeypatch.setattr(token_module.time, "time", lambda: now[0])
    return now


def sent_token(auth: BearerAuth, url: str = "https://api.example.com/items?page=1") -> str:
    prepared = auth(requests.Request("GET", url).prepare())
    return prepared.headers["Authorization"]


def test_pages_reuse_the_token_without_reading_the_cache_each_time(clock: list[float]) -> None:
    provider = ScriptedProvider(issued("t1"))
    auth = BearerAuth(provider, "https://api.example.com")  # type: ignore[arg-type]
    headers = [sent_token(auth, f"https://api.example.com/items?page={n}") for n in range(50)]
    assert headers == ["Bearer t1"] * 50
    assert provider.reads == 1


def test_the_token_is_renewed_at_its_early_refresh_in_the_middle_of_a_pull(
    clock: list[float],
) -> None:
    provider = ScriptedProvider(issued("t1"))
    auth = BearerAuth(provider, "https://api.example.com")  # type: ignore[arg-type]
    assert sent_token(auth) == "Bearer t1"
    first = provider.current
    provider.current = issued("t2", at=first.refresh_at)
    clock[0] = first.refresh_at - 1
    assert sent_token(auth) == "Bearer t1"  # still fresh: no read
    clock[0] = first.refresh_at
    assert sent_token(auth) == "Bearer t2"  # renewed before t1 expires
    assert clock[0] < first.expires_at
    assert provider.reads == 2


def test_after_a_401_the_replay_and_the_next_pages_carry_the_new_token(
    canned: CannedServer,
) -> None:
    provider = ScriptedProvider(issued_now("t1"), issued_now("t2"))
    canned.add(Canned(401, "", {"WWW-Authenticate": 'Bearer error="invalid_token"'}))
    canned.default = Canned(200, "[]", {"Content-Type": "application/json"})
    with requests.Session() as session:
        session.auth = BearerAuth(provider, canned.url)  # type: ignore[arg-type]
        assert session.get(f"{canned.url}/items?page=1", timeout=5).status_code == 200
        assert session.get(f"{canned.url}/items?page=2", timeout=5).status_code == 200
    assert [r.headers["Authorization"] for r in canned.requests] == [
        "Bearer t1",
        "Bearer t2",  # the replay
        "Bearer t2",  # the next page
    ]
    assert provider.invalidated == ["t1"]


def issued_now(access_token: str) -> Token:
    import time

    return issued(access_token, at=time.time())
