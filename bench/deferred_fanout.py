"""Deferred fan-out: N OAuthHttpTriggers, each waiting on a slow API call, in one event loop.

What a triggerer does with N deferred tasks: every trigger is stored (serialized), rebuilt and
run concurrently in one asyncio loop. Each calls ``/v1/sleep?seconds=S`` on the local API (in
its own process, as a remote API is), starting on a cold token cache. Ideally they all finish
in S seconds of wall time, with one token request between them.

    uv run python bench/deferred_fanout.py [--triggers 100] [--seconds 1.0] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
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
CONN_ID = "bench_fanout"


def stored_and_rebuilt(trigger: Any) -> Any:
    """The trigger as the triggerer gets it: from its serialized form."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))


async def fan_out(triggers: list[Any]) -> tuple[float, list[str]]:
    started = time.perf_counter()
    events = await asyncio.gather(*(anext(t.run()) for t in triggers))
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
        auth=("app", SECRET),
        timeout=10,
    )
    token = answer.json()["access_token"]
    return asyncio.run(plain_fan_out(f"{server['api_url']}/v1/sleep", token, triggers, seconds))


def run_round(server: dict[str, Any], triggers: int, seconds: float) -> dict[str, Any]:
    import requests

    from airflow_provider_oauthcc.auth.cache import PROCESS_CACHE
    from airflow_provider_oauthcc.triggers.oauth_http import OAuthHttpTrigger
    from tests.support.devserver_process import control_stats

    PROCESS_CACHE.clear()  # a cold cache: the first triggers race for the token
    requests.post(f"{server['control_url']}/reset", timeout=10).raise_for_status()
    batch = [
        stored_and_rebuilt(OAuthHttpTrigger(CONN_ID, "/v1/sleep", data={"seconds": seconds}))
        for _ in range(triggers)
    ]
    wall, statuses = asyncio.run(fan_out(batch))
    stats = control_stats(server)
    return {
        "wall": wall,
        "ok": statuses.count("success"),
        "token_requests": stats["token_requests"],
        "api_requests": stats["api_requests"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--triggers", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="oauthcc-bench-"))
    from tests.support.connections import conn_json
    from tests.support.devserver_process import devserver_process

    client = {"client_id": "app", "secret": SECRET, "scope": "read"}
    with devserver_process([client], "--api-workers", str(args.triggers + 8)) as server:
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = conn_json(
            server["api_url"], "app", SECRET, auth_url=server["token_url"], scope="read"
        )
        run_round(server, min(args.triggers, 5), 0.0)  # warm up imports and the server
        rounds = [run_round(server, args.triggers, args.seconds) for _ in range(args.rounds)]
        plain = statistics.median(
            plain_round(server, args.triggers, args.seconds) for _ in range(args.rounds)
        )

    walls = [r["wall"] for r in rounds]
    print(
        f"{args.triggers} deferred OAuthHttpTriggers, each waiting on a {args.seconds:g} s API "
        f"call, in one event loop ({args.rounds} rounds, cold token cache each round)"
    )
    for number, result in enumerate(rounds, start=1):
        print(
            f"  round {number}: {result['wall']:.2f} s wall, {result['ok']}/{args.triggers} "
            f"succeeded, {result['token_requests']} token request(s), "
            f"{result['api_requests']} API requests"
        )
    median = statistics.median(walls)
    print(f"wall time (median): {median:.2f} s; ideal {args.seconds:g} s")
    print(f"ratio to ideal: {median / args.seconds:.2f}x")
    print(
        f"plain aiohttp, token fetched beforehand (the server's floor): {plain:.2f} s; "
        f"the triggers' own cost (connection, token, setup): {median - plain:+.2f} s"
    )
    print(f"token requests per round: {max(r['token_requests'] for r in rounds)} (target 1)")
    failed = any(r["ok"] != args.triggers for r in rounds)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
