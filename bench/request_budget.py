"""What the request budget costs a request when it makes no one wait, and what it buys when
tasks fan out against a rate-limited API.

1. Overhead: sequential GETs of the local API through one hook session, with the budget off,
   in this process (learning from headers), and in Redis (a rate limit too high to bind: one
   Redis round trip per request); interleaved rounds, medians, ratios to "off".
2. Fan-out: ``--processes`` task processes pulling together against an API that allows
   ``--limit`` requests a second per client: the 429s the server counted and the rate it
   admitted, with the budget off, learning from headers only, and with ``rate_limit``.

Needs redis-server on PATH.

    uv run python bench/request_budget.py [--requests 400] [--rounds 5] [--processes 4] [--limit 25]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SECRET = "bench-secret-value-budget-51"
REDIS_CONN_ID = "bench_redis"


def overhead(requests_per_round: int, rounds: int, redis_port: int) -> dict[str, float]:
    from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook
    from devserver import DevServer
    from tests.support.connections import conn_json

    os.environ[f"AIRFLOW_CONN_{REDIS_CONN_ID.upper()}"] = json.dumps(
        {"conn_type": "redis", "host": "127.0.0.1", "port": redis_port}
    )
    modes = {
        "off": {"rate_limit_learn": False},
        "in process": {},
        "redis": {
            "rate_limit": "100000/s",
            "cache_backend": "redis",
            "cache_redis_conn_id": REDIS_CONN_ID,
        },
    }
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    with DevServer(capture=False) as server:
        server.add_client("app", secret=SECRET, scope="read")
        sessions = {}
        for mode, extra in modes.items():
            conn_id = f"bench_{mode.replace(' ', '_')}"
            os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = conn_json(
                server.api_url, "app", SECRET, auth_url=server.token_url, **extra
            )
            sessions[mode] = OAuthCCHook(oauth_conn_id=conn_id).get_conn()
            sessions[mode].get(f"{server.api_url}/v1/whoami").raise_for_status()  # warm
        url = f"{server.api_url}/v1/whoami"
        for _ in range(rounds):
            for mode, session in sessions.items():
                started = time.perf_counter()
                for _ in range(requests_per_round):
                    session.get(url)
                times[mode].append((time.perf_counter() - started) / requests_per_round)
    return {mode: statistics.median(values) for mode, values in times.items()}


def fan_out(processes: int, limit: int, redis_port: int) -> dict[str, tuple[int, float, int]]:
    from devserver import DevServer
    from tests.support.budget_tasks import PullPlan, run_pulls
    from tests.support.connections import conn_json

    modes = {
        "budget off": {"rate_limit_learn": False},
        "headers only": {},
        f"rate_limit {limit}/s": {"rate_limit": f"{limit}/s", "rate_limit_learn": False},
    }
    rows = {}
    with DevServer(capture=False) as server:
        server.add_client("app", secret=SECRET, scope="read")
        server.dataset_size = 30
        for mode, extra in modes.items():
            server.api_rate_limit.configure(per_second=limit)
            connection = conn_json(
                server.api_url,
                "app",
                SECRET,
                auth_url=server.token_url,
                cache_backend="redis",
                cache_redis_conn_id=REDIS_CONN_ID,
                **extra,
            )
            redis_conn = json.dumps({"conn_type": "redis", "host": "127.0.0.1", "port": redis_port})
            plan = PullPlan(
                "bench_fan_out",
                connection,
                params={"limit": 10},
                pulls=10,
                threads=2,
                env={f"AIRFLOW_CONN_{REDIS_CONN_ID.upper()}": redis_conn},
            )
            results = run_pulls(processes, plan)
            counts = server.api_rate_limit.counts("app")
            failed = sum(len(r.failed) for r in results)
            rows[mode] = (counts.refused, counts.rate(), failed)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="per round and mode")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--limit", type=int, default=25, help="requests/s the API allows")
    args = parser.parse_args()

    from tests.support.redis_server import RedisServer

    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    with tempfile.TemporaryDirectory(prefix="oauthcc-bench-") as scratch:
        os.environ.setdefault("AIRFLOW_HOME", str(Path(scratch) / "airflow-home"))
        redis = RedisServer()
        try:
            per_request = overhead(args.requests, args.rounds, redis.port)
            rows = fan_out(args.processes, args.limit, redis.port)
        finally:
            redis.stop()

    base = per_request["off"]
    print(f"\nOne session, sequential GETs of the local API ({args.rounds} rounds, medians)")
    for mode, seconds in per_request.items():
        print(f"  {mode:<12}{seconds * 1e6:>9.0f} µs/request{seconds / base:>8.2f}x")
    print(
        f"\n{args.processes} processes x 10 pulls of 3 pages, API limit {args.limit}/s per client"
    )
    for mode, (refused, rate, failed) in rows.items():
        print(
            f"  {mode:<18}{refused:>5} 429s{rate:>8.1f} req/s admitted "
            f"({rate / args.limit:.0%} of the limit){failed:>4} pulls failed"
        )


if __name__ == "__main__":
    main()
