"""Throughput of a paginated pull against a fast API: OAuthHttpOperator vs hand-written loops.

The API is ``bench/page_server.py`` in its own process: pages pre-built in memory, so the time
a pull takes is the client's. The run first shows that: the server alone (a raw keep-alive
socket, no parsing) answers the N pages k times faster than the plain loop takes them.

Five clients pull the same N pages (``Link: rel="next"``), interleaved round by round so they
see the same machine state; each client's time is divided by its yardstick's time in the same
round, and the median of those ratios is printed with their min..max (lower is faster):

  JSON Lines to a file, yardstick: a ``requests.Session`` loop that ``json.loads`` each page
  and ``json.dumps`` each record to a file (what a user writes by hand)
    OAuthHttpOperator   ``paginate=LinkHeaderPaginator(), output=file://...jsonl``
  HttpOperator-compatible mode, yardstick: a plain ``requests.Session`` loop that follows the
  Link header and keeps each body's length
    OAuthHttpOperator   ``pagination_function`` + ``response_filter`` (HttpOperator's arguments)
    HttpOperator        the same arguments, a static bearer token in the connection's extra

Connections per pull are counted by the server. Every pull's records are checked: the JSON
Lines files are byte-identical, every record once, in order.

    uv run python bench/pull_throughput.py [--pages 2000] [--page-size 100] [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from page_server import PageServerProcess, raw_fetch_all  # noqa: E402

TOKEN = "bench-token"  # what page_server's /token hands out


def jsonl_loop(url: str, target: Path) -> int:
    """The hand-written JSON Lines pull: loads each page, dumps each record."""
    records = 0
    with requests.Session() as session, target.open("w", encoding="utf-8") as file:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        next_url: str | None = f"{url}/items"
        while next_url:
            response = session.get(next_url, timeout=30)
            response.raise_for_status()
            for record in json.loads(response.text):
                file.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
                records += 1
            next_url = response.links.get("next", {}).get("url")
    return records


def plain_loop(url: str, target: Path) -> int:
    """The plain loop: follow the Link header, keep each body's length."""
    sizes = []
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        next_url: str | None = f"{url}/items"
        while next_url:
            response = session.get(next_url, timeout=30)
            response.raise_for_status()
            sizes.append(len(response.content))
            next_url = response.links.get("next", {}).get("url")
    return len(sizes)


def next_page(response: requests.Response) -> dict[str, Any] | None:
    """HttpOperator's pagination_function: the next page's parameters from the Link header."""
    link = response.links.get("next")
    if not link:
        return None
    return {"data": {"page": parse_qs(urlsplit(link["url"]).query)["page"][0]}}


def body_sizes(responses: list[requests.Response]) -> int:
    """HttpOperator's response_filter: as the plain loop, each body's length."""
    return len([len(response.content) for response in responses])


def oauth_jsonl(url: str, target: Path) -> int:
    from airflow_provider_oauthcc.auth.cache import PROCESS_CACHE
    from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
    from airflow_provider_oauthcc.pagination import LinkHeaderPaginator

    PROCESS_CACHE.clear()  # every pull pays for its token, as a new task process would
    summary = OAuthHttpOperator(
        task_id="pull",
        oauth_conn_id="bench_oauth",
        endpoint="/items",
        paginate=LinkHeaderPaginator(),
        output=f"file://{target}",
    ).execute({})
    return int(summary["records"])


def oauth_compat(url: str, target: Path) -> int:
    from airflow_provider_oauthcc.auth.cache import PROCESS_CACHE
    from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator

    PROCESS_CACHE.clear()
    pages: int = OAuthHttpOperator(
        task_id="pull",
        oauth_conn_id="bench_oauth",
        endpoint="/items",
        pagination_function=next_page,
        response_filter=body_sizes,
    ).execute({})
    return pages


def http_operator(url: str, target: Path) -> int:
    from airflow.providers.http.operators.http import HttpOperator

    pages: int = HttpOperator(
        task_id="pull",
        http_conn_id="bench_http",
        method="GET",
        endpoint="/items",
        pagination_function=next_page,
        response_filter=body_sizes,
    ).execute({})
    return pages


def connections(url: str) -> int:
    return int(requests.get(f"{url}/stats", timeout=10).json()["connections"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--pad", type=int, default=0, help="extra bytes per record")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    records = args.pages * args.page_size

    with tempfile.TemporaryDirectory(prefix="oauthcc-bench-") as tmp, PageServerProcess(
        args.pages, args.page_size, args.pad
    ) as server:  # fmt: skip
        workdir, url = Path(tmp), server.url
        os.environ["AIRFLOW_CONN_BENCH_OAUTH"] = json.dumps(
            {
                "conn_type": "oauth2_client_credentials",
                "host": url,
                "login": "bench-client",
                "password": "bench-secret",
                "extra": {"auth_url": f"{url}/token"},
            }
        )
        os.environ["AIRFLOW_CONN_BENCH_HTTP"] = json.dumps(
            {"conn_type": "http", "host": url, "extra": {"Authorization": f"Bearer {TOKEN}"}}
        )
        # name -> (client, what it returns per pull, yardstick)
        clients: dict[str, tuple[Callable[[str, Path], int], int, str | None]] = {
            "server alone (raw socket, no parsing)": (
                lambda u, t: raw_fetch_all(u, args.pages) and args.pages,
                args.pages,
                "plain requests.Session loop",
            ),
            "plain requests.Session loop": (plain_loop, args.pages, None),
            "hand-written JSONL loop": (jsonl_loop, records, None),
            "OAuthHttpOperator -> JSONL": (oauth_jsonl, records, "hand-written JSONL loop"),
            "OAuthHttpOperator, HttpOperator mode": (
                oauth_compat,
                args.pages,
                "plain requests.Session loop",
            ),
            "HttpOperator + pagination_function": (
                http_operator,
                args.pages,
                "plain requests.Session loop",
            ),
        }
        sockets: dict[str, int] = {}
        files: dict[str, bytes] = {}
        for name, (client, expected, _) in clients.items():  # warm-up, and the checks
            target = workdir / f"{len(files)}.jsonl"
            before = connections(url)
            got = client(url, target)
            sockets[name] = connections(url) - before - 1  # minus the /stats call itself
            assert got == expected, f"{name}: {got} != {expected}"
            if target.exists():
                files[name] = target.read_bytes()
        assert files["OAuthHttpOperator -> JSONL"] == files["hand-written JSONL loop"], "differ"
        assert len(files["hand-written JSONL loop"].splitlines()) == records
        size_mb = len(files["hand-written JSONL loop"]) / 1e6

        seconds: dict[str, list[float]] = {name: [] for name in clients}
        names = list(clients)
        for round_number in range(args.rounds):
            shift = round_number % len(names)  # rotate who goes first
            for name in names[shift:] + names[:shift]:
                client = clients[name][0]
                target = workdir / "out.jsonl"
                started = time.perf_counter()
                client(url, target)
                seconds[name].append(time.perf_counter() - started)
                target.unlink(missing_ok=True)

    print(
        f"{args.pages} pages x {args.page_size} records ({size_mb:.1f} MB of JSON Lines), "
        f"{args.rounds} interleaved rounds, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at the end"
    )
    print(f"{'client':<40} {'median s':>9} {'sockets':>8}  vs yardstick (median, min..max)")
    for name, (_, _, yardstick) in clients.items():
        median = statistics.median(seconds[name])
        if yardstick is None:
            versus = "yardstick"
        else:
            ratios = [m / y for m, y in zip(seconds[name], seconds[yardstick], strict=True)]
            versus = (
                f"{statistics.median(ratios):.2f}x  ({min(ratios):.2f}..{max(ratios):.2f})"
                f"  of {yardstick}"
            )
        print(f"{name:<40} {median:>9.3f} {sockets[name]:>8}  {versus}")


if __name__ == "__main__":
    main()
