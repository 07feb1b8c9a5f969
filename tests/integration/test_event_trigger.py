"""OAuthHttpEventTrigger (AssetWatcher) against the real local authorization server and API's
change feed: one event per batch, a restart resumes from the stored cursor, a revoked token is
refreshed once, many watchers share one token per connection."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_oauthcc.auth.cache import PROCESS_CACHE
from devserver import DevServer
from tests.support.connections import airflow_conn, conn_json
from tests.support.deferral import rebuild_trigger
from tests.support.redis_server import RedisServer, redis_server
from tests.support.triggerer_loop import run_bounded

from .conftest import SECRET

__all__ = ["redis_server"]  # fixture

from airflow_provider_oauthcc.triggers import oauth_http_event as event_trigger

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not event_trigger._HAS_WATCHERS, reason="asset watchers are Airflow 3+"),
]


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    with DevServer(api_workers=32) as srv:
        srv.add_client("app", secret=SECRET, scope="read write", default_scope="read")
        yield srv


@pytest.fixture(autouse=True)
def _fresh(server: DevServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server.reset()
    server.feed.clear()
    PROCESS_CACHE.clear()
    monkeypatch.setenv("AIRFLOW__OAUTHCC__WATCH_STATE_DIR", str(tmp_path / "watch-state"))


@pytest.fixture
def conn(server: DevServer) -> Iterator[str]:
    value = conn_json(server.api_url, "app", SECRET, auth_url=server.token_url)
    with airflow_conn("feed", value):
        yield "feed"


def watcher(conn_id: str, **overrides: Any) -> Any:
    """A trigger as the triggerer gets it: serialized, stored, rebuilt."""
    settings: dict[str, Any] = {
        "cursor_param": "since",
        "cursor_path": "next_cursor",
        "records_path": "records",
        "poll_interval": 0.05,
        "max_backoff": 0.5,
        "persist_delay": 0.0,
        "data": {"limit": 2},
        **overrides,
    }
    trigger = event_trigger.OAuthHttpEventTrigger(conn_id, "/v1/changes", **settings)
    classpath, kwargs = trigger.serialize()
    return rebuild_trigger(classpath, json.loads(json.dumps(kwargs)))


def append(server: DevServer, count: int) -> None:
    requests.post(
        f"{server.api_url}/_control/feed", json={"count": count}, timeout=5
    ).raise_for_status()


class Watch:
    """Runs a watcher as the triggerer does: iterated without pause, its events queued;
    ``stop`` cancels it (a triggerer shutting down)."""

    def __init__(self, trigger: Any) -> None:
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task = asyncio.ensure_future(self._consume(trigger))

    async def _consume(self, trigger: Any) -> None:
        async for event in trigger.run():
            await self.events.put(event.payload)

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        return await asyncio.wait_for(self.events.get(), timeout)

    async def none_for(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        assert self.events.empty(), f"an event came unasked: {self.events.get_nowait()}"

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def test_one_event_per_batch_with_the_new_cursor_and_nothing_when_quiet(
    server: DevServer, conn: str
) -> None:
    async def main() -> list[dict[str, Any]]:
        events = Watch(watcher(conn))
        append(server, 3)
        first = await events.next()
        append(server, 2)
        second = await events.next()
        await events.none_for(0.6)
        await events.stop()
        return [first, second]

    first, second = run_bounded(main, timeout=30)
    # 3 records in pages of 2: one event covers the batch
    assert first == {"cursor_from": None, "cursor": "3", "count": 3, "pages": 3}
    assert second == {"cursor_from": "3", "cursor": "5", "count": 2, "pages": 2}
    body = json.dumps([first, second])
    assert "change-" not in body, "records never travel in the event"
    tokens = [c.headers.get("Authorization", "") for c in server.stats.api_captures]
    assert all(t.split()[-1] not in body for t in tokens if t)


def test_a_restarted_watcher_resumes_from_the_stored_cursor(server: DevServer, conn: str) -> None:
    async def until_first_event() -> dict[str, Any]:
        events = Watch(watcher(conn))
        append(server, 3)
        payload = await events.next()
        await asyncio.sleep(0.2)  # past persist_delay: the cursor is stored
        await events.stop()  # the triggerer stops
        return payload

    async def after_restart() -> dict[str, Any]:
        events = Watch(watcher(conn))  # rebuilt from its serialized form, as on restart
        payload = await events.next()
        await events.none_for(0.4)
        await events.stop()
        return payload

    assert run_bounded(until_first_event, timeout=30)["cursor"] == "3"
    append(server, 2)  # arrives while no triggerer runs
    resumed = run_bounded(after_restart, timeout=30)
    assert resumed == {"cursor_from": "3", "cursor": "5", "count": 2, "pages": 2}


def test_a_killed_triggerer_before_the_cursor_was_stored_announces_again_never_skips(
    server: DevServer, conn: str
) -> None:
    async def killed_before_storing() -> dict[str, Any]:
        events = Watch(watcher(conn, persist_delay=30.0))
        append(server, 3)
        payload = await events.next()
        await events.stop()  # within persist_delay: nothing stored
        return payload

    async def after_restart() -> dict[str, Any]:
        events = Watch(watcher(conn))
        payload = await events.next()
        await events.stop()
        return payload

    first = run_bounded(killed_before_storing, timeout=30)
    again = run_bounded(after_restart, timeout=30)
    assert again["cursor_from"] == first["cursor_from"] is None
    assert again["cursor"] == first["cursor"] == "3"


def test_the_state_lives_in_redis_when_the_connection_shares_tokens_there(
    server: DevServer, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WATCH_REDIS", redis_server.url)
    value = conn_json(
        server.api_url,
        "app",
        SECRET,
        auth_url=server.token_url,
        cache_backend="redis",
        cache_redis_conn_id="watch_redis",
    )

    async def main() -> dict[str, Any]:
        events = Watch(watcher("feed_redis"))
        append(server, 1)
        payload = await events.next()
        await asyncio.sleep(0.2)
        await events.stop()
        return payload

    with airflow_conn("feed_redis", value):
        assert run_bounded(main, timeout=30)["cursor"] == "1"
    client = redis_server.client()
    keys = [k.decode() for k in client.keys("oauthcc:watch:*")]
    assert len(keys) == 1
    assert json.loads(client.get(keys[0])) == {"cursor": "1"}


def test_a_revoked_token_is_refreshed_once_and_the_watch_goes_on(
    server: DevServer, conn: str
) -> None:
    async def main() -> list[dict[str, Any]]:
        events = Watch(watcher(conn))
        append(server, 1)
        first = await events.next()
        server.revoke_all_tokens()
        append(server, 1)
        second = await events.next()
        await events.stop()
        return [first, second]

    first, second = run_bounded(main, timeout=30)
    assert second["cursor_from"] == first["cursor"] == "1"
    assert server.stats.token_requests == 2


def test_an_outage_is_retried_with_backoff_and_nothing_is_lost(
    server: DevServer, conn: str
) -> None:
    async def main() -> dict[str, Any]:
        server.api_faults.add(status=500, times=6)
        events = Watch(watcher(conn, retries=0))
        append(server, 2)
        payload = await events.next(timeout=20)
        await events.stop()
        return payload

    assert run_bounded(main, timeout=40)["count"] == 2


def test_etag_mode_fires_when_the_answer_changes(server: DevServer, conn: str) -> None:
    async def main() -> list[dict[str, Any]]:
        events = Watch(
            watcher(conn, cursor_param=None, cursor_path=None, records_path=None, data={})
        )
        first = await events.next()  # the first answer is new
        await events.none_for(0.4)
        append(server, 1)
        second = await events.next()
        await events.stop()
        return [first, second]

    first, second = run_bounded(main, timeout=30)
    assert set(first) == {"digest"} and first != second


def test_a_hundred_watchers_over_ten_connections_fetch_one_token_each(server: DevServer) -> None:
    connections = {}
    for n in range(10):
        server.add_client(f"app{n}", secret=SECRET, scope="read", default_scope="read")
        connections[f"feed_{n}"] = conn_json(
            server.api_url, f"app{n}", SECRET, auth_url=server.token_url
        )

    async def main() -> list[dict[str, Any]]:
        watches = [
            Watch(watcher(conn_id, state_key=f"w{n}-{conn_id}"))
            for conn_id in connections
            for n in range(10)
        ]
        append(server, 1)
        payloads = await asyncio.gather(*(w.next(timeout=30) for w in watches))
        for watch in watches:
            await watch.stop()
        return list(payloads)

    with _connections(connections):
        payloads = run_bounded(main, timeout=60)
    assert all(p["cursor"] == "1" for p in payloads)
    assert server.stats.token_requests == 10


class _connections:
    def __init__(self, values: dict[str, str]) -> None:
        self._contexts = [airflow_conn(conn_id, value) for conn_id, value in values.items()]

    def __enter__(self) -> None:
        for context in self._contexts:
            context.__enter__()

    def __exit__(self, *exc: object) -> None:
        for context in reversed(self._contexts):
            context.__exit__(*exc)


def test_an_asset_watcher_accepts_it(conn: str) -> None:
    from airflow.sdk import Asset, AssetWatcher

    trigger = event_trigger.OAuthHttpEventTrigger(
        conn, "/v1/changes", cursor_param="since", cursor_path="next_cursor"
    )
    asset = Asset("oauthcc-feed", watchers=[AssetWatcher(name="feed", trigger=trigger)])
    assert asset.watchers[0].trigger is trigger


def test_bad_settings_are_refused_before_anything_runs() -> None:
    with pytest.raises(ValueError, match="together"):
        event_trigger.OAuthHttpEventTrigger("c", "/v1/changes", cursor_param="since")
    with pytest.raises(ValueError, match="poll_interval"):
        event_trigger.OAuthHttpEventTrigger("c", "/x", poll_interval=0)


def test_an_expiring_token_is_renewed_and_the_watch_goes_on(server: DevServer) -> None:
    server.add_client("short", secret=SECRET, scope="read", token_lifetime=2)
    value = conn_json(server.api_url, "short", SECRET, auth_url=server.token_url)

    async def main() -> list[dict[str, Any]]:
        watch = Watch(watcher("feed_short"))
        payloads = []
        for _ in range(3):
            append(server, 1)
            payloads.append(await watch.next())
            await asyncio.sleep(1.5)  # the token runs out while the watcher polls on
        await watch.stop()
        return payloads

    with airflow_conn("feed_short", value):
        payloads = run_bounded(main, timeout=40)
    assert [p["cursor"] for p in payloads] == ["1", "2", "3"]
    assert server.stats.token_requests >= 2
    rejected = [c for c in server.stats.api_captures if c.status == 401]
    assert not rejected, "renewed before it expired, not after a refusal"


def test_a_watcher_with_its_own_scope_gets_its_own_token(server: DevServer, conn: str) -> None:
    server.add_client("app", secret=SECRET, scope="read changes", default_scope="read")

    async def main() -> dict[str, Any]:
        watch = Watch(watcher(conn, scope="changes"))
        append(server, 1)
        payload = await watch.next()
        await watch.stop()
        return payload

    assert run_bounded(main, timeout=30)["cursor"] == "1"
    tokens = {c.headers["Authorization"].split()[1] for c in server.stats.api_captures}
    assert {jwt_claims(token)["scope"] for token in tokens} == {"changes"}


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims
