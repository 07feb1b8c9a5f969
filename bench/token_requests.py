"""Token requests made by N task-like processes, for each token cache backend.

Each task is its own process (forked from a worker-like parent that has imported the hook, as
Airflow's task supervisor and Celery's prefork pool do) that builds an OAuthCCHook from an
AIRFLOW_CONN_<ID> JSON env var and calls the local API once. Tasks run in waves of
``--concurrency`` (worker slots), all starting on a cold cache. The token endpoint answers after
``--token-latency`` seconds, as a remote identity provider does. Needs redis-server on PATH.

    uv run python bench/token_requests.py [--tasks 100] [--concurrency 16] [--token-latency 0.2]
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

SECRET = "bench-secret-value-7c2e"
REDIS_CONN_ID = "bench_redis"


def run_backend(
    backend: str,
    tasks: int,
    concurrency: int,
    token_latency: float,
    redis_port: int,
    cache_dir: Path,
) -> dict[str, float]:
    from devserver import DevServer
    from tests.support.connections import conn_json
    from tests.support.task_processes import run_tasks

    with DevServer(capture=False) as server:
        server.add_client("app", secret=SECRET, scope="read", token_lifetime=3600)
        if token_latency > 0:
            server.token_faults.add(delay=token_latency, every=1)
        extra = {
            "auth_url": server.token_url,
            "scope": "read",
            "cache_backend": backend,
            "cache_dir": str(cache_dir / backend),
            "cache_redis_conn_id": REDIS_CONN_ID,
        }
        connection = conn_json(server.api_url, "app", SECRET, **extra)
        env = {
            f"AIRFLOW_CONN_{REDIS_CONN_ID.upper()}": json.dumps(
                {"conn_type": "redis", "host": "127.0.0.1", "port": redis_port}
            )
        }
        durations: list[float] = []
        failures = 0
        started = time.perf_counter()
        remaining = tasks
        while remaining:
            wave = min(concurrency, remaining)
            results = run_tasks(wave, "bench_api", connection, env=env)
            durations += [r.seconds for r in results if r.ok]
            failures += sum(not r.ok for r in results)
            remaining -= wave
        wall = time.perf_counter() - started
        return {
            "token_requests": server.stats.token_requests,
            "api_requests": server.stats.api_requests,
            "failures": failures,
            "median_task_ms": statistics.median(durations) * 1000 if durations else float("nan"),
            "wall_s": wall,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--token-latency", type=float, default=0.2, help="seconds")
    parser.add_argument("--backends", default="memory,file,redis")
    args = parser.parse_args()

    from tests.support.redis_server import RedisServer
    from tests.support.task_processes import context

    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    with tempfile.TemporaryDirectory(prefix="oauthcc-bench-") as scratch:
        os.environ.setdefault("AIRFLOW_HOME", str(Path(scratch) / "airflow-home"))
        print("starting the task-process forkserver (imports Airflow once) ...", flush=True)
        warm = context().Process(target=time.sleep, args=(0,))
        warm.start()
        warm.join()
        redis = RedisServer()
        try:
            rows = {
                backend: run_backend(
                    backend,
                    args.tasks,
                    args.concurrency,
                    args.token_latency,
                    redis.port,
                    Path(scratch),
                )
                for backend in args.backends.split(",")
            }
        finally:
            redis.stop()

    naive = args.tasks
    print()
    print(
        f"{args.tasks} task processes, {args.concurrency} at a time, cold cache, "
        f"token lifetime 3600 s, token endpoint latency {args.token_latency * 1000:.0f} ms"
    )
    header = (
        f"{'cache backend':<22}{'token requests':>15}{'vs naive':>10}{'API calls':>11}"
        f"{'failed':>8}{'median task':>13}{'wall':>8}"
    )
    print(header)
    print("-" * len(header))
    print(f"{'naive (one per task)':<22}{naive:>15}{'1.00x':>10}")
    for backend, row in rows.items():
        ratio = row["token_requests"] / naive
        print(
            f"{backend:<22}{row['token_requests']:>15.0f}{ratio:>9.2f}x{row['api_requests']:>11.0f}"
            f"{row['failures']:>8.0f}{row['median_task_ms']:>10.0f} ms{row['wall_s']:>7.1f}s"
        )


if __name__ == "__main__":
    main()
