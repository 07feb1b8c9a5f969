"""What DPoP costs per API request: the same requests with a bearer token and a DPoP-bound one.

Sends ``--requests`` GETs through the hook's session (one keep-alive connection) to the local
API, once per token kind, in alternating rounds; prints the DPoP/Bearer time ratio, and the time
to sign one proof alone. The local API verifies every proof, so the ratio includes the server's
side; against a remote API the network dominates and the ratio is nearer 1.

    uv run python bench/dpop_overhead.py [--requests 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SECRET = "bench-secret-value-d9a1"


def timed_requests(api_url: str, token_url: str, count: int, dpop: bool) -> float:
    from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook
    from tests.support.connections import airflow_conn, conn_json

    extra = {"auth_url": token_url, "scope": "read", "dpop": dpop}
    with airflow_conn("bench", conn_json(api_url, "app", SECRET, **extra)):
        hook = OAuthCCHook(oauth_conn_id="bench")
        session = hook.get_conn()
        session.get(f"{api_url}/v1/whoami").raise_for_status()  # token, nonce, connection
        started = time.perf_counter()
        for _ in range(count):
            session.get(f"{api_url}/v1/items", params={"limit": 5}).raise_for_status()
        elapsed = time.perf_counter() - started
        session.close()
    return elapsed


def proof_signing(count: int) -> float:
    from airflow_provider_oauthcc.auth.dpop import DPoPKey

    key = DPoPKey.generate()
    started = time.perf_counter()
    for _ in range(count):
        key.proof("GET", "https://api.example.com/v1/items", access_token="a" * 800)
    return (time.perf_counter() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from airflow_provider_oauthcc.auth.cache import PROCESS_CACHE
    from devserver import DevServer

    with DevServer(capture=False) as server:
        server.add_client("app", secret=SECRET, scope="read")
        server.demand_dpop_nonces(token=False, api=True)
        ratios = []
        for _ in range(args.rounds):
            PROCESS_CACHE.clear()
            bearer = timed_requests(server.api_url, server.token_url, args.requests, dpop=False)
            dpop = timed_requests(server.api_url, server.token_url, args.requests, dpop=True)
            ratios.append(dpop / bearer)
    signing = proof_signing(1000)
    print(f"{args.requests} API requests, {args.rounds} rounds")
    print(f"DPoP / Bearer time: {statistics.median(ratios):.2f}x (median of rounds)")
    print(f"one ES256 proof signed in {signing * 1e6:.0f} µs")


if __name__ == "__main__":
    main()
