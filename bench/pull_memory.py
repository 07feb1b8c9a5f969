"""Peak memory of a ~100 MB pull vs a ~1 MB pull: OAuthHttpOperator vs HttpOperator.

Each pull runs in a fresh process (as an Airflow task does) and reports its peak RSS
(``ru_maxrss``). OAuthHttpOperator streams to a JSON Lines file (``output=file://...``), one
page in memory at a time; HttpOperator with ``pagination_function`` keeps every response until
the end (its XCom is the list of response texts). The ratio large/small is what matters: 1.00
means the pull's size does not change its memory (target for OAuthHttpOperator: <= 1.2).
The API runs in its own process (``python -m devserver``); runs are interleaved.

    uv run python bench/pull_memory.py [--large-mb 100] [--small-mb 1] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from pull_throughput import CLIENT_ID, ENDPOINT, ApiProcess

PAD = 1000  # bytes of padding per record: ~1.06 KB per JSON record
RECORD_BYTES = 1_060
PAGE_SIZE = 1000

TASK = textwrap.dedent(
    """
    import json, resource, sys
    from urllib.parse import parse_qs, urlsplit

    variant, target, data = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    if variant == "OAuthHttpOperator":
        from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
        from airflow_provider_oauthcc.pagination import LinkHeaderPaginator

        summary = OAuthHttpOperator(
            task_id="pull", oauth_conn_id="bench_oauth", endpoint=ENDPOINT, data=data,
            paginate=LinkHeaderPaginator(), output="file://" + target,
        ).execute({})
        size = summary["bytes"]
    else:
        from airflow.providers.http.operators.http import HttpOperator

        def next_page(response):
            link = response.links.get("next")
            if not link:
                return None
            return {"data": {"after": parse_qs(urlsplit(link["url"]).query)["after"][0]}}

        texts = HttpOperator(
            task_id="pull", http_conn_id="bench_http", method="GET", endpoint=ENDPOINT,
            data=data, pagination_function=next_page,
        ).execute({})
        size = sum(len(t) for t in texts)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps({"peak_mib": peak, "bytes": size}))
    """
).replace("ENDPOINT", repr(ENDPOINT))

VARIANTS = ("OAuthHttpOperator", "HttpOperator + pagination_function")


def measure(variant: str, records: int, workdir: Path, env: dict[str, str]) -> dict[str, float]:
    # Records are numbered by hour from 2024-01-01; the window keeps the first `records`.
    before = "2024-01-01T00:00:00+00:00"
    data = {"limit": PAGE_SIZE, "pad": PAD, "updated_before": _hours_after(before, records)}
    result = subprocess.run(
        [sys.executable, "-c", TASK, variant, str(workdir / "out.jsonl"), json.dumps(data)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{result.stderr[-3000:]}")
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    measured: dict[str, float] = json.loads(line.removeprefix("RESULT "))
    return measured


def _hours_after(start: str, hours: int) -> str:
    from datetime import datetime, timedelta

    return (datetime.fromisoformat(start) + timedelta(hours=hours)).isoformat()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large-mb", type=float, default=100)
    parser.add_argument("--small-mb", type=float, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    sizes = {
        "small": max(1, round(args.small_mb * 1e6 / RECORD_BYTES)),
        "large": max(1, round(args.large_mb * 1e6 / RECORD_BYTES)),
    }
    with tempfile.TemporaryDirectory(prefix="oauthcc-bench-") as tmp:
        workdir = Path(tmp)
        api = ApiProcess(sizes["large"], workdir)
        try:
            token = api.token()
            env = dict(
                os.environ,
                PYTHONPATH=str(Path(__file__).resolve().parents[1]),
                AIRFLOW__CORE__LOAD_EXAMPLES="False",
                AIRFLOW_CONN_BENCH_OAUTH=json.dumps(
                    {
                        "conn_type": "oauth2_client_credentials",
                        "host": api.state["api_url"],
                        "login": CLIENT_ID,
                        "password": api.secret,
                        "extra": {"auth_url": api.state["token_url"], "scope": "read"},
                    }
                ),
                AIRFLOW_CONN_BENCH_HTTP=json.dumps(
                    {
                        "conn_type": "http",
                        "host": api.state["api_url"],
                        "extra": {"Authorization": f"Bearer {token}"},
                    }
                ),
            )
            peaks: dict[tuple[str, str], list[float]] = {}
            pulled: dict[str, float] = {}
            for _ in range(args.repeats):
                for size, records in sizes.items():
                    for variant in VARIANTS:
                        result = measure(variant, records, workdir, env)
                        peaks.setdefault((variant, size), []).append(result["peak_mib"])
                        pulled[size] = result["bytes"]
        finally:
            api.stop()

    print(
        f"peak RSS of one pull in a fresh process, median of {args.repeats}; "
        f"large = {pulled['large'] / 1e6:.0f} MB in {-(-sizes['large'] // PAGE_SIZE)} pages, "
        f"small = {pulled['small'] / 1e6:.1f} MB in {-(-sizes['small'] // PAGE_SIZE)} page(s)"
    )
    print(f"{'method':<36} {'small MiB':>10} {'large MiB':>10} {'large/small':>12}")
    for variant in VARIANTS:
        small = statistics.median(peaks[(variant, "small")])
        large = statistics.median(peaks[(variant, "large")])
        print(f"{variant:<36} {small:>10.0f} {large:>10.0f} {large / small:>11.2f}x")


if __name__ == "__main__":
    main()
