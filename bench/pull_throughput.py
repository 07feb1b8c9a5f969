"""Throughput of a paginated pull against a fast API: OAuthHttpOperator vs hand-written loops.

The API is ``bench/page_server.py`` in its own process: pages pre-built in memory, so the time
a pull takes is the client's. The run first shows that: the server alone (a raw keep-alive
socket, no parsing) answers the N pages k times faster than the plain loop takes them.

Six clients pull the same N pages (``Link: rel="next"``), interleaved round by round so they
see the same machine state; each client's time is divided by its yardstick's time in the same
round, and the median of those ratios is printed with their min..max (lower is faster):

  JSON Lines to a file, yardstick: a ``requests.Session`` loop that ``json.loads`` each page
  and ``json.dumps`` each record to a file (what a user writes by hand)
    OAuthHttpOperator   ``paginate=LinkHeaderPaginator(), output=file://...jsonl``; also
                        against a fetch-and-parse loop (``json.loads`` each page, nothing
                        written): what no pull can beat
  HttpOperator-compatible mode, yardstick: a plain ``requests.Session`` loop that follows the
  Link header and keeps each body's length
    OAuthHttpOperator   ``pagination_function`` + ``response_filter`` (HttpOperator's arguments)
    HttpOperator        the same arguments, a static bearer token in the connection's extra

Two workloads, one after the other in the same run: the order workload (``--pages`` pages of
``--page-size`` nested records of about 240 bytes, plus ``--pad``) and the small-page workload
(``--small-pages`` pages of 100 flat records of about 130 bytes), where what a client does per
page, rather than per byte, decides its speed.

Connections per pull are counted by the server. Every pull's records are checked: the JSON
Lines files are byte-identical, every record once, in order.

    uv run python bench/pull_throughput.py [--pages 2000] [--page-size 100] [--pad 0]
                                           [--small-pages 2000] [--rounds 7]
                                           [--workloads order,small]
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from page_server import PageServerProcess, raw_fetch_all  # noqa: E402

TOKEN = "bench-token"  # what page_server's /token hands out
PLAIN = "plain requests.Session loop"
PARSE = "plain fetch-and-parse loop"
JSONL = "hand-written JSONL loop"


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


def parse_loop(url: str, target: Path) -> int:
    """The plain fetch-and-parse loop: ``json.loads`` each page, nothing written."""
    records = 0
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        next_url: str | None = f"{url}/items"
        while next_url:
            response = session.get(next_url, timeout=30)
            response.raise_for_status()
            records += len(json.loads(response.text))
            next_url = response.links.get("next", {}).get("url")
    return records


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
    from airflow_provider_oauthcc.pull.pagination import LinkHeaderPaginator

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


@dataclass(frozen=True)
class Workload:
    name: str
    pages: int
    page_size: int
    pad: int
    shape: str


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--pad", type=int, default=0, help="extra bytes per record")
    parser.add_argument("--small-pages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--workloads", default="order,small", help="comma-separated: order, small")
    args = parser.parse_args()
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    workloads = {
        "order": Workload("order records", args.pages, args.page_size, args.pad, "order"),
        "small": Workload("small pages", args.small_pages, 100, 0, "flat"),
    }
    for name in args.workloads.split(","):
        run_workload(workloads[name.strip()], args.rounds)


def run_workload(workload: Workload, rounds: int) -> None:
    pages, records = workload.pages, workload.pages * workload.page_size
    with tempfile.TemporaryDirectory(prefix="oauthcc-bench-") as tmp, PageServerProcess(
        pages, workload.page_size, workload.pad, workload.shape
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
        # name -> (client, what it returns per pull, its yardsticks)
        clients: dict[str, tuple[Callable[[str, Path], int], int, tuple[str, ...]]] = {
            "server alone (raw socket, no parsing)": (
                lambda u, t: raw_fetch_all(u, pages) and pages,
                pages,
                (PLAIN,),
            ),
            PLAIN: (plain_loop, pages, ()),
            PARSE: (parse_loop, records, ()),
            JSONL: (jsonl_loop, records, ()),
            "OAuthHttpOperator -> JSONL": (oauth_jsonl, records, (JSONL, PARSE)),
            "OAuthHttpOperator, HttpOperator mode": (oauth_compat, pages, (PLAIN,)),
            "HttpOperator + pagination_function": (http_operator, pages, (PLAIN,)),
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
        assert files["OAuthHttpOperator -> JSONL"] == files[JSONL], "differ"
        assert len(files[JSONL].splitlines()) == records
        size_mb = len(files[JSONL]) / 1e6

        seconds: dict[str, list[float]] = {name: [] for name in clients}
        names = list(clients)
        for round_number in range(rounds):
            shift = round_number % len(names)  # rotate who goes first
            for name in names[shift:] + names[:shift]:
                client = clients[name][0]
                target = workdir / "out.jsonl"
                started = time.perf_counter()
                client(url, target)
                seconds[name].append(time.perf_counter() - started)
                target.unlink(missing_ok=True)

    print(
        f"{workload.name}: {pages} pages x {workload.page_size} records of about "
        f"{len(files[JSONL]) // records} bytes ({size_mb:.1f} MB of JSON "
        f"Lines), {rounds} interleaved rounds, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at the end"
    )
    print(f"{'client':<40} {'median s':>9} {'sockets':>8}  vs yardstick (median, min..max)")
    for name, (_, _, yardsticks) in clients.items():
        median = statistics.median(seconds[name])
        versus = ["yardstick"] if not yardsticks else []
        for yardstick in yardsticks:
            ratios = [m / y for m, y in zip(seconds[name], seconds[yardstick], strict=True)]
            versus.append(
                f"{statistics.median(ratios):.2f}x  ({min(ratios):.2f}..{max(ratios):.2f})"
                f"  of {yardstick}"
            )
        print(f"{name:<40} {median:>9.3f} {sockets[name]:>8}  {versus[0]}")
        for more in versus[1:]:
            print(f"{'':<59}{more}")
    print()


if __name__ == "__main__":
    main()
