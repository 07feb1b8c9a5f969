"""Peak memory of a ~100 MB pull vs a ~1 MB pull: OAuthHttpOperator vs HttpOperator.

Each pull runs in a fresh process (as an Airflow task does) and reports its peak RSS
(``ru_maxrss``). OAuthHttpOperator streams to a JSON Lines file (``output=file://...``), one
page in memory at a time; HttpOperator with ``pagination_function`` keeps every response until
the end (its XCom is the list of response texts). The ratio large/small is what matters: 1.00
means the pull's size does not change its memory (target for OAuthHttpOperator: <= 1.2).
The API is ``bench/page_server.py`` in its own process (pages of ~1 MB, served from memory),
one per size; it counts the connections each pull opens. Runs are interleaved.

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

import requests
from page_server import PageServerProcess

PAD = 800  # bytes of padding per record: ~1.05 KB per JSON record
PAGE_SIZE = 1000
ENDPOINT = "/items"

TASK = textwrap.dedent(
    """
    import json, resource, sys
    from urllib.parse import parse_qs, urlsplit

    variant, target = sys.argv[1], sys.argv[2]
    if variant == "OAuthHttpOperator":
        from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
        from airflow_provider_oauthcc.pull.pagination import LinkHeaderPaginator

        summary = OAuthHttpOperator(
            task_id="pull", oauth_conn_id="bench_oauth", endpoint=ENDPOINT,
            paginate=LinkHeaderPaginator(), output="file://" + target,
        ).execute({})
        size = summary["bytes"]
    else:
        from airflow.providers.http.operators.http import HttpOperator

        def next_page(response):
            link = response.links.get("next")
            if not link:
                return None
            return {"data": {"page": parse_qs(urlsplit(link["url"]).query)["page"][0]}}

        texts = HttpOperator(
            task_id="pull", http_conn_id="bench_http", method="GET", endpoint=ENDPOINT,
            pagination_function=next_page,
        ).execute({})
        size = sum(len(t) for t in texts)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps({"peak_mib": peak, "bytes": size}))
    """
).replace("ENDPOINT", repr(ENDPOINT))

VARIANTS = ("OAuthHttpOperator", "HttpOperator + pagination_function")


def measure(variant: str, url: str, workdir: Path, env: dict[str, str]) -> dict[str, float]:
    env = dict(
        env,
        AIRFLOW_CONN_BENCH_OAUTH=json.dumps(
            {
                "conn_type": "oauth2_client_credentials",
                "host": url,
                "login": "bench-client",
                "password": "bench-secret",
                "extra": {"auth_url": f"{url}/token"},
            }
        ),
        AIRFLOW_CONN_BENCH_HTTP=json.dumps(
            {"conn_type": "http", "host": url, "extra": {"Authorization": "Bearer bench-token"}}
        ),
    )
    before = connections(url)
    result = subprocess.run(
        [sys.executable, "-c", TASK, variant, str(workdir / "out.jsonl")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{result.stderr[-3000:]}")
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    measured: dict[str, float] = json.loads(line.removeprefix("RESULT "))
    measured["sockets"] = connections(url) - before - 1  # minus the /stats call itself
    return measured


def connections(url: str) -> int:
    return int(requests.get(f"{url}/stats", timeout=10).json()["connections"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large-mb", type=float, default=100)
    parser.add_argument("--small-mb", type=float, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    page_mb = PAGE_SIZE * (PAD + 250) / 1e6  # ~1 MB a page
    pages = {
        "small": max(1, round(args.small_mb / page_mb)),
        "large": max(1, round(args.large_mb / page_mb)),
    }
    env = dict(
        os.environ,
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )
    with (
        tempfile.TemporaryDirectory(prefix="oauthcc-bench-") as tmp,
        PageServerProcess(pages["small"], PAGE_SIZE, PAD) as small,
        PageServerProcess(pages["large"], PAGE_SIZE, PAD) as large,
    ):
        workdir, urls = Path(tmp), {"small": small.url, "large": large.url}
        peaks: dict[tuple[str, str], list[float]] = {}
        sockets: dict[tuple[str, str], float] = {}
        pulled: dict[str, float] = {}
        for _ in range(args.repeats):
            for size, url in urls.items():
                for variant in VARIANTS:
                    result = measure(variant, url, workdir, env)
                    peaks.setdefault((variant, size), []).append(result["peak_mib"])
                    sockets[(variant, size)] = result["sockets"]
                    pulled[size] = result["bytes"]

    print(
        f"peak RSS of one pull in a fresh process, median of {args.repeats}; "
        f"large = {pulled['large'] / 1e6:.0f} MB in {pages['large']} pages, "
        f"small = {pulled['small'] / 1e6:.1f} MB in {pages['small']} page(s); "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'method':<36} {'small MiB':>10} {'large MiB':>10} {'large/small':>12} "
        f"{'sockets small/large':>20}"
    )
    for variant in VARIANTS:
        small_peak = statistics.median(peaks[(variant, "small")])
        large_peak = statistics.median(peaks[(variant, "large")])
        counts = f"{sockets[(variant, 'small')]:.0f} / {sockets[(variant, 'large')]:.0f}"
        print(
            f"{variant:<36} {small_peak:>10.0f} {large_peak:>10.0f} "
            f"{large_peak / small_peak:>11.2f}x {counts:>20}"
        )


if __name__ == "__main__":
    main()
