"""Masking at a constant cost: rotating tokens live in a bounded set that forgets them at
expiry, applied to the HTTP client libraries' loggers; long-lived secrets go to the masker."""

from __future__ import annotations

import asyncio
import logging
import secrets
import tracemalloc
from collections.abc import Iterator

import pytest
import requests

from airflow_provider_oauthcc.auth import masking
from airflow_provider_oauthcc.auth.cache import MemoryTokenCache
from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.live_secrets import MASK, LiveSecrets
from airflow_provider_oauthcc.auth.provider import TokenPolicy
from airflow_provider_oauthcc.auth.token import Token
from tests.support.canned_http import CannedServer

HOUR = 3600.0
CONNECTIONS = 100
ROTATIONS = 10_000  # 100 connections with hourly tokens: four days of a triggerer's life


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    """A simulated clock for the process's live set."""
    clock = Clock()
    process_set = masking.LIVE
    monkeypatch.setattr(masking, "LIVE", LiveSecrets(clock=clock))
    masking.LOG_FILTER.secrets = masking.LIVE
    yield clock
    masking.LOG_FILTER.secrets = process_set


@pytest.fixture
def masked(clock: Clock) -> Iterator[list[str]]:
    seen: list[str] = []
    masking.set_masker(seen.append)
    yield seen
    masking.set_masker(None)


def jwt_like() -> str:
    return ".".join(secrets.token_urlsafe(n) for n in (24, 60, 43))


def test_a_triggerer_holds_only_the_tokens_still_valid_after_many_rotations(
    clock: Clock, masked: list[str]
) -> None:
    policy = TokenPolicy(
        ClientConfig.from_connection(
            client_id="app", client_secret="s3cret-long-lived", extra={"auth_url": "https://i/t"}
        ),
        MemoryTokenCache(),
    )
    masking.mask("s3cret-long-lived")

    async def rotate(count: int) -> None:
        for _ in range(count):
            # One connection's hourly token every 36 s: 100 connections' worth.
            clock.now += HOUR / CONNECTIONS
            token = Token(jwt_like(), "Bearer", clock.now + HOUR, clock.now)
            await policy.ahand_out(token, hit=False)

    tracemalloc.start()
    try:
        asyncio.run(rotate(ROTATIONS // 5))
        after_the_first_day = tracemalloc.get_traced_memory()[0]
        asyncio.run(rotate(ROTATIONS - ROTATIONS // 5))
        at_the_end = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()

    # A token and its signature for each of the ~100 tokens valid now, not 10,000 of them.
    assert len(masking.LIVE) <= 2 * (CONNECTIONS + 1)
    # 8,000 more tokens seen, and the memory held is what it was (one token is ~300 bytes).
    assert at_the_end - after_the_first_day < 100_000
    # Airflow's masker, whose cost grows with every value, got the client secret and no token.
    assert masked == ["s3cret-long-lived"]
    assert len(masking._masked) == 1


def test_a_token_is_forgotten_at_its_expiry_and_the_set_never_exceeds_its_limit(
    clock: Clock,
) -> None:
    live = LiveSecrets(limit=50, clock=clock)
    # Too short to be told from ordinary text: held, it would garble every line.
    assert not live.add("t-1", clock.now + HOUR)
    assert live.redact("the task t-1 went to the API") == "the task t-1 went to the API"
    assert live.add("token-valid-for-an-hour", clock.now + HOUR)
    assert "token-valid-for-an-hour" in live
    clock.now += HOUR
    assert "token-valid-for-an-hour" not in live
    assert live.redact("token-valid-for-an-hour") == "token-valid-for-an-hour"
    assert len(live) == 0
    for number in range(1000):
        live.add(f"token-{number:04d}-still-valid", clock.now + HOUR + number)
    assert len(live) == 50
    # Full: the ones that expire soonest went first.
    assert "token-0999-still-valid" in live and "token-0000-still-valid" not in live


def test_a_token_in_a_urllib3_debug_line_is_masked_while_it_is_valid(
    canned: CannedServer, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    token = jwt_like()
    masking.mask_token(token, clock.now + HOUR)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    # An API that wants the token in the query: urllib3 logs the whole request line.
    requests.get(f"{canned.url}/items", params={"access_token": token}, timeout=5)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")]
    assert any(f"access_token={MASK}" in line for line in lines), lines
    assert not any(token.split(".")[2] in line for line in lines)
    assert token not in caplog.text

    clock.now += HOUR  # expired: it opens nothing any more, and is no longer held
    caplog.clear()
    requests.get(f"{canned.url}/items", params={"access_token": token}, timeout=5)
    assert token in caplog.text


@pytest.mark.parametrize("logger", ["aiohttp.client", "aiohttp.internal", "requests"])
def test_a_token_logged_by_an_http_client_at_debug_is_masked(
    logger: str, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    token = secrets.token_urlsafe(32)
    masking.hold_token(token, clock.now + HOUR)
    caplog.set_level(logging.DEBUG, logger=logger)
    try:
        raise ValueError(f"bad header value 'Bearer {token}'")
    except ValueError:
        logging.getLogger(logger).debug("sending Authorization: Bearer %s", token, exc_info=True)
    assert caplog.records and caplog.records[-1].name == logger
    assert token not in caplog.text
    assert f"Bearer {MASK}" in caplog.text


def test_a_token_in_a_trigger_error_event_is_masked_while_it_is_valid(clock: Clock) -> None:
    from airflow_provider_oauthcc.triggers.events import encode_error

    token = jwt_like()
    masking.hold_token(token, clock.now + HOUR)
    event = encode_error(ValueError(f"Invalid header value b'Bearer {token}\\n'"))
    assert token.split(".")[2] not in event["message"]
    assert f"Bearer {MASK}" in event["message"]
