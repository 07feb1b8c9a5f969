"""Many asset watchers in one triggerer: do they poll on schedule?

W ``OAuthHttpEventTrigger`` watchers over C connections (a cold shared token cache) run in one
event loop whose default executor has 2 threads, as a busy triggerer's, each polling a page of
the fast in-memory API (bench/page_server.py, its own process) every P seconds for D seconds,
in change mode (nothing changes, so no event fires: the bench measures polling alone). The
baseline, in the same run, is what a user would write by hand: W plain aiohttp loops with a
token fetched beforehand, ``get``, ``read``, ``asyncio.sleep(P)``.

Prints, for both: the time to every watcher's first poll (start-up: reading the connection,
the token), the mean time between two polls of one watcher in the steady state (the ideal is
P plus the request's own time), its ratio to the baseline's (1.0: on schedule as a
hand-written loop), and the token requests (one per connection is the goal). Airflow and the
provider are imported before the clock starts, as a triggerer has them imported.

    uv run python bench/watchers.py [--watchers 100] [--connections 10] [--interval 1.0]
                                    [--duration 15]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from page_server import PageServerProcess


def conn_id(number: int) -> str:
    return f"bench_watch_{number:02d}"


async def watchers(
    count: int, connections: int, interval: float, duration: float
) -> list[list[float]]:
    """The times of each watcher's polls in ``duration`` seconds."""
    from airflow_provider_oauthcc.hooks.oauth_cc_async import OAuthCCAsyncHook
    from airflow_provider_oauthcc.triggers.oauth_http_event import OAuthHttpEventTrigger

    polls: list[list[float]] = [[] for _ in range(count)]
    original = OAuthCCAsyncHook.run

    async def counting_run(self: Any, *args: Any, **kwargs: Any) -> Any:
        response = await original(self, *args, **kwargs)
        polls[int(self._bench_number)].append(time.perf_counter())
        return response

    OAuthCCAsyncHook.run = counting_run  # type: ignore[method-assign]
    original_init = OAuthCCAsyncHook.__init__
    numbers = iter(range(count))

    def numbered_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._bench_number = next(numbers)

    OAuthCCAsyncHook.__init__ = numbered_init  # type: ignore[method-assign]
    triggers = [
        OAuthHttpEventTrigger(
            conn_id(n % connections),
            "/items",
            data={"page": 1},
            poll_interval=interval,
            max_backoff=interval,
            state_key=f"bench-{n}",
        )
        for n in range(count)
    ]
    tasks = [asyncio.ensure_future(_drain(t)) for t in triggers]
    await asyncio.sleep(duration)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    OAuthCCAsyncHook.run = original  # type: ignore[method-assign]
    OAuthCCAsyncHook.__init__ = original_init  # type: ignore[method-assign]
    return polls


async def _drain(trigger: Any) -> None:
    async for _ in trigger.run():
        pass


async def by_hand(url: str, count: int, interval: float, duration: float) -> list[list[float]]:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/token") as answer:
            token = (await answer.json())["access_token"]
        polls: list[list[float]] = [[] for _ in range(count)]

        async def loop(n: int) -> None:
            while True:
                async with session.get(
                    f"{url}/items", params={"page": 1}, headers={"Authorization": f"Bearer {token}"}
                ) as response:
                    await response.read()
                polls[n].append(time.perf_counter())
                await asyncio.sleep(interval)

        tasks = [asyncio.ensure_future(loop(n)) for n in range(count)]
        await asyncio.sleep(duration)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return polls


def in_triggerer_loop(main: Any) -> Any:
    loop = asyncio.new_event_loop()
    loop.set_default_executor(ThreadPoolExecutor(2))
    try:
        return loop.run_until_complete(main)
    finally:
        loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=15.0)
    args = parser.parse_args()
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="oauthcc-bench-"))
    os.environ["AIRFLOW__OAUTHCC__WATCH_STATE_DIR"] = tempfile.mkdtemp(prefix="oauthcc-watch-")
    with PageServerProcess(pages=1, page_size=20) as server:
        for n in range(args.connections):
            os.environ[f"AIRFLOW_CONN_{conn_id(n).upper()}"] = json.dumps(
                {
                    "conn_type": "oauth2_client_credentials",
                    "host": server.url,
                    "login": f"bench-{n}",
                    "password": "bench-secret-watchers",
                    "extra": {"auth_url": f"{server.url}/token"},
                }
            )
        from airflow_provider_oauthcc.auth import metrics

        fetched: list[str] = []

        class Count:
            def incr(self, name: str) -> None:
                if name == metrics.FETCH:
                    fetched.append(name)

            def timing(self, name: str, seconds: float) -> None:
                pass

        # What a triggerer has imported already.
        import airflow_provider_oauthcc.hooks.oauth_cc_async
        import airflow_provider_oauthcc.triggers.oauth_http_event  # noqa: F401

        metrics.set_recorder(Count())
        started = time.perf_counter()
        ours = in_triggerer_loop(
            watchers(args.watchers, args.connections, args.interval, args.duration)
        )
        hand_started = time.perf_counter()
        hand = in_triggerer_loop(by_hand(server.url, args.watchers, args.interval, args.duration))
    ours_gap, hand_gap = steady_gap(ours), steady_gap(hand)
    print(
        f"{args.watchers} watchers over {args.connections} connections, a poll every "
        f"{args.interval:g} s, for {args.duration:g} s"
    )
    print(
        f"  start-up to every first poll: watchers {first_polls(ours, started):.2f} s, "
        f"by hand {first_polls(hand, hand_started):.2f} s (token fetched beforehand)"
    )
    print(f"  steady gap between polls:     watchers {ours_gap:.3f} s, by hand {hand_gap:.3f} s")
    print(f"  watchers' gap / by hand's:    {ours_gap / hand_gap:.3f}x")
    print(f"  token requests:               {len(fetched)} (connections: {args.connections})")


def first_polls(polls: list[list[float]], started: float) -> float:
    return max(times[0] for times in polls) - started


def steady_gap(polls: list[list[float]]) -> float:
    gaps = [b - a for times in polls for a, b in itertools.pairwise(times[1:])]
    return sum(gaps) / len(gaps)


if __name__ == "__main__":
    main()
