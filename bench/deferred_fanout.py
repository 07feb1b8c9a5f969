"""Deferred fan-out: N OAuthHttpTriggers over C connections, each waiting on a slow API call,
in one event loop.

What a triggerer does with N deferred tasks: every trigger is stored (serialized), rebuilt and
run concurrently in one asyncio loop (its default executor limited to a few threads, as on a
small machine). Each calls ``/v1/sleep?seconds=S`` on the local API (in its own process, as a
remote API is), starting on a cold token cache. Ideally they all finish in S seconds of wall
time, with one token request per connection.

A triggerer runs for weeks, and every token it obtains passes through the provider's masking;
a cost that grows with each token seen shows only over time. So between the first round and
the last, ``--rotations`` new tokens (10,000 by default: 100 connections' hourly tokens for four
days) pass through the same path, ``AsyncTokenProvider.get_token``, from clients of the same
server whose tokens live one second. The run prints every round, the last round's time over the
first's (1.0 when nothing grows), the process's memory after the first round and at the end,
and the rounds' time over plain aiohttp's, whose token is fetched beforehand (the floor).

    uv run python bench/deferred_fanout.py [--triggers 1000] [--connections 100]
                                           [--seconds 1.0] [--rounds 3] [--pool-threads 2]
                                           [--rotations 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SECRET = "bench-secret-value-fan-out"


def conn_id(number: int) -> str:
    return f"bench_fanout_{number:03d}"


def client_id(number: int) -> str:
    return f"bench-{number:03d}"


def rotating_conn_id(number: int) -> str:
    return f"bench_rotating_{number:03d}"


def rotating_client_id(number: int) -> str:
    return f"bench-rotating-{number:03d}"


def resident_mib() -> float:
    """This process's resident memory now (not its peak), after a collection."""
    gc.collect()
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


async def rotate_tokens(count: int, connections: int) -> float:
    """``count`` new tokens through the triggerer's token path, ``connections`` at a time."""
    from airflow_provider_oauthcc.hooks.oauth_cc_async import OAuthCCAsyncHook

    async def rotate(number: int, times: int) -> None:
        provider = await OAuthCCAsyncHook(rotating_conn_id(number)).token_provider()
        for _ in range(times):
            token = await provider.get_token()
            await provider.invalidate(token)  # the next call fetches a new one

    started = time.perf_counter()
    share, rest = divmod(count, connections)
    await asyncio.gather(*(rotate(n, share + (n < rest)) for n in range(connections)))
    return time.perf_counter() - started


def stored_and_rebuilt(trigger: Any) -> Any:
    """The trigger as the triggerer gets it: from its serialized form."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))


async def fan_out(triggers: list[Any], pool_threads: int) -> tuple[float, list[str]]:
    from concurrent.futures import ThreadPoolExecutor

    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(pool_threads))
    started = time.perf_counter()
    events = await asyncio.wait_for(asyncio.gather(*(anext(t.run()) for t in triggers)), 600)
    return time.perf_counter() - started, [e.payload["status"] for e in events]


async def plain_fan_out(url: str, token: str, count: int, seconds: float) -> float:
    """The same calls with plain aiohttp and a token fetched beforehand: the floor."""
    import aiohttp

    async def one() -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                url, params={"seconds": seconds}, headers={"Authorization": f"Bearer {token}"}
            ) as response,
        ):
            await response.read()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    return time.perf_counter() - started


def plain_round(server: dict[str, Any], triggers: int, seconds: float) -> float:
    import requests

    answer = requests.post(
        server["token_url"],
        data={"grant_type": "client_credentials", "scope": "read"},
        auth=(client_id(0), SECRET),
        timeout=10,
    )
    token = answer.json()["access_token"]
    return asyncio.run(plain_fan_out(f"{server['api_url']}/v1/sleep", token, triggers, seconds))


def run_round(
    server: dict[str, Any], triggers: int, connections: int, seconds: float, pool_threads: int
) -> dict[str, Any]:
    import requests

    from airflow_provider_oauthcc.auth.cache import PROCESS_CACHE
    from airflow_provider_oauthcc.triggers.oauth_http import OAuthHttpTrigger
    from tests.support.devserver_process import control_stats

    PROCESS_CACHE.clear()  # a cold cache: the first triggers race for the token
    requests.post(f"{server['control_url']}/reset", timeout=10).raise_for_status()
    batch = [
        stored_and_rebuilt(
            OAuthHttpTrigger(conn_id(n % connections), "/v1/sleep", data={"seconds": seconds})
        )
        for n in range(triggers)
    ]
    wall, statuses = asyncio.run(fan_out(batch, pool_threads))
    stats = control_stats(server)
    per_client = stats["token_requests_by_client"].values()
    return {
        "wall": wall,
        "ok": statuses.count("success"),
        "token_requests": stats["token_requests"],
        "max_per_connection": max(per_client, default=0),
        "api_requests": stats["api_requests"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--triggers", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--pool-threads", type=int, default=2, help="the loop's default executor")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--rotations", type=int, default=10_000, help="new tokens between first and last round"
    )
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error("--rounds: at least 2 (a first and a last)")

    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="oauthcc-bench-"))
    from tests.support.connections import conn_json
    from tests.support.devserver_process import devserver_process

    clients = [
        {"client_id": client_id(n), "secret": SECRET, "scope": "read"}
        for n in range(args.connections)
    ] + [
        {"client_id": rotating_client_id(n), "secret": SECRET, "scope": "read", "token_lifetime": 1}
        for n in range(args.connections)
    ]
    with devserver_process(clients, "--api-workers", str(args.triggers + 8)) as server:
        for number in range(args.connections):
            os.environ[f"AIRFLOW_CONN_{conn_id(number).upper()}"] = conn_json(
                server["api_url"],
                client_id(number),
                SECRET,
                auth_url=server["token_url"],
                scope="read",
            )
            os.environ[f"AIRFLOW_CONN_{rotating_conn_id(number).upper()}"] = conn_json(
                server["api_url"],
                rotating_client_id(number),
                SECRET,
                auth_url=server["token_url"],
                scope="read",
            )
        # Warm up imports and the server.
        run_round(server, min(args.triggers, 5), 1, 0.0, args.pool_threads)
        rounds: list[dict[str, Any]] = []
        rotations: list[tuple[int, float]] = []
        memory = []
        for number in range(args.rounds):
            if number:
                count = args.rotations * number // (args.rounds - 1) - sum(c for c, _ in rotations)
                rotations.append((count, asyncio.run(rotate_tokens(count, args.connections))))
            rounds.append(
                run_round(server, args.triggers, args.connections, args.seconds, args.pool_threads)
            )
            memory.append(resident_mib())
        plain = statistics.median(
            plain_round(server, args.triggers, args.seconds) for _ in range(args.rounds)
        )

    walls = [r["wall"] for r in rounds]
    print(
        f"{args.triggers} deferred OAuthHttpTriggers over {args.connections} connections, each "
        f"waiting on a {args.seconds:g} s API call, in one event loop with a "
        f"{args.pool_threads}-thread default executor ({args.rounds} rounds, cold token cache "
        f"each round, {args.rotations} token rotations between the first and the last)"
    )
    for number, result in enumerate(rounds, start=1):
        if number > 1:
            count, seconds = rotations[number - 2]
            print(f"  {count} token rotations: {seconds:.1f} s ({count / seconds:.0f} per s)")
        print(
            f"  round {number}: {result['wall']:.2f} s wall, {result['ok']}/{args.triggers} "
            f"succeeded, {result['token_requests']} token request(s) "
            f"(at most {result['max_per_connection']} per connection), "
            f"{result['api_requests']} API requests; {memory[number - 1]:.0f} MiB resident"
        )
    print(
        f"last round / first round: {walls[-1] / walls[0]:.2f} "
        f"after {sum(c for c, _ in rotations)} token rotations; resident memory "
        f"{memory[0]:.0f} -> {memory[-1]:.0f} MiB"
    )
    print(
        f"first round / plain aiohttp: {walls[0] / plain:.2f}x; "
        f"last round / plain aiohttp: {walls[-1] / plain:.2f}x"
    )
    median = statistics.median(walls)
    print(f"wall time (median): {median:.2f} s; ideal {args.seconds:g} s")
    print(f"ratio to ideal: {median / args.seconds:.2f}x")
    print(
        f"plain aiohttp, token fetched beforehand (the server's floor): {plain:.2f} s; "
        f"the triggers' own cost (connection, token, setup): {median - plain:+.2f} s"
    )
    print(
        f"token requests per round: {max(r['token_requests'] for r in rounds)} "
        f"(target {args.connections}: one per connection)"
    )
    failed = any(r["ok"] != args.triggers for r in rounds)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
