"""Throughput of one paginated pull: OAuthHttpOperator vs a plain requests loop vs HttpOperator.

The same N-page pull from the local API (``/v1/link/items``, Link rel="next" pages) to a JSON
Lines file, three ways, interleaved round by round so they see the same machine state:

  baseline       a plain keep-alive ``requests.Session`` loop with a static bearer token
  OAuthHttpOperator  ``paginate=LinkHeaderPaginator(), output=file://...`` (token fetch included)
  HttpOperator   ``pagination_function`` + ``response_filter`` writing the same file at the end

The API runs in its own process (``python -m devserver``). Prints median seconds per pull and
throughput relative to the baseline: the median over rounds of baseline time / method time
(1.00 = as fast; the target for OAuthHttpOperator is >= 0.95).

    uv run python bench/pull_throughput.py [--pages 100] [--page-size 500] [--pad 100] [--rounds 9]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CLIENT_ID = "demo-client"  # registered by `python -m devserver`
ENDPOINT = "/v1/link/items"


class ApiProcess:
    """``python -m devserver`` in its own process, stopped on exit."""

    def __init__(self, dataset_size: int, workdir: Path) -> None:
        self.secret = secrets.token_urlsafe(24)
        state_file = workdir / "devserver.json"
        env = dict(os.environ, DEVSERVER_DEMO_SECRET=self.secret)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devserver", "--state-file", str(state_file),
             "--dataset-size", str(dataset_size)],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not state_file.exists() or not state_file.read_text().strip():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit("devserver did not start")
            time.sleep(0.05)
        self.state: dict[str, Any] = json.loads(state_file.read_text())

    def token(self) -> str:
        response = requests.post(
            self.state["token_url"],
            data={"grant_type": "client_credentials", "scope": "read"},
            auth=(CLIENT_ID, self.secret),
            timeout=10,
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)


def jsonl(records: list[Any]) -> str:
    """One page as JSON Lines, compact, as OAuthHttpOperator writes it: same bytes everywhere."""
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)


def baseline(api: ApiProcess, token: str, params: dict[str, Any], target: Path) -> int:
    """What one would write by hand: a keep-alive session, a static token, a Link loop."""
    records = 0
    with requests.Session() as session, target.open("w", encoding="utf-8") as file:
        session.headers["Authorization"] = f"Bearer {token}"
        url: str | None = api.state["api_url"] + ENDPOINT
        query: dict[str, Any] | None = params
        while url:
            response = session.get(url, params=query, timeout=30)
            response.raise_for_status()
            page = response.json()
            file.write(jsonl(page))
            records += len(page)
            url, query = response.links.get("next", {}).get("url"), None
    return records


def oauth_operator(params: dict[str, Any], target: Path) -> int:
    from airflow_provider_oauthcc.auth.cache import PROCESS_CACHE
    from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
    from airflow_provider_oauthcc.pagination import LinkHeaderPaginator

    PROCESS_CACHE.clear()  # every pull pays for its token, as a new task process would
    summary = OAuthHttpOperator(
        task_id="pull",
        oauth_conn_id="bench_oauth",
        endpoint=ENDPOINT,
        data=params,
        paginate=LinkHeaderPaginator(),
        output=f"file://{target}",
    ).execute({})
    return int(summary["records"])


def http_operator(params: dict[str, Any], target: Path) -> int:
    from airflow.providers.http.operators.http import HttpOperator

    def next_page(response: requests.Response) -> dict[str, Any] | None:
        link = response.links.get("next")
        if not link:
            return None
        return {"data": {"after": parse_qs(urlsplit(link["url"]).query)["after"][0]}}

    def write_all(responses: list[requests.Response]) -> int:
        records = 0
        with target.open("w", encoding="utf-8") as file:
            for response in responses:
                page = response.json()
                file.write(jsonl(page))
                records += len(page)
        return records

    records: int = HttpOperator(
        task_id="pull",
        http_conn_id="bench_http",
        method="GET",
        endpoint=ENDPOINT,
        data=params,
        pagination_function=next_page,
        response_filter=write_all,
    ).execute({})
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--pad", type=int, default=100, help="extra bytes per record")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

    records = args.pages * args.page_size
    params = {"limit": args.page_size, "pad": args.pad}
    with tempfile.TemporaryDirectory(prefix="oauthcc-bench-") as tmp:
        workdir = Path(tmp)
        api = ApiProcess(records, workdir)
        try:
            token = api.token()
            os.environ["AIRFLOW_CONN_BENCH_OAUTH"] = json.dumps(
                {
                    "conn_type": "oauth2_client_credentials",
                    "host": api.state["api_url"],
                    "login": CLIENT_ID,
                    "password": api.secret,
                    "extra": {"auth_url": api.state["token_url"], "scope": "read"},
                }
            )
            os.environ["AIRFLOW_CONN_BENCH_HTTP"] = json.dumps(
                {
                    "conn_type": "http",
                    "host": api.state["api_url"],
                    "extra": {"Authorization": f"Bearer {token}"},
                }
            )
            methods: dict[str, Callable[[Path], int]] = {
                "requests.Session loop (baseline)": lambda t: baseline(api, token, params, t),
                "OAuthHttpOperator": lambda t: oauth_operator(params, t),
                "HttpOperator + pagination_function": lambda t: http_operator(params, t),
            }
            outputs = set()
            for name, method in methods.items():  # warm-up: imports, first connections
                assert method(workdir / "warmup.jsonl") == records, name
                outputs.add((workdir / "warmup.jsonl").read_bytes())
            assert len(outputs) == 1, "the three methods wrote different files"
            size_mb = (workdir / "warmup.jsonl").stat().st_size / 1e6
            seconds: dict[str, list[float]] = {name: [] for name in methods}
            names = list(methods)
            for round_number in range(args.rounds):
                shift = round_number % len(names)  # rotate who goes first
                for name in names[shift:] + names[:shift]:
                    method = methods[name]
                    target = workdir / "out.jsonl"
                    started = time.perf_counter()
                    assert method(target) == records, name
                    seconds[name].append(time.perf_counter() - started)
                    target.unlink()
        finally:
            api.stop()

    base = seconds["requests.Session loop (baseline)"]
    print(
        f"{args.pages} pages x {args.page_size} records (pad {args.pad}, {size_mb:.1f} MB of "
        f"JSON Lines), {args.rounds} interleaved rounds"
    )
    print(f"{'method':<38} {'median s':>9} {'records/s':>11} {'vs baseline':>12}")
    for name, values in seconds.items():
        median = statistics.median(values)
        # Each round's baseline over this method's time in the same round, then the median:
        # paired, so a slower or faster stretch of the machine affects both sides alike.
        ratio = statistics.median(b / v for b, v in zip(base, values, strict=True))
        print(f"{name:<38} {median:>9.3f} {records / median:>11,.0f} {ratio:>11.2f}x")


if __name__ == "__main__":
    main()
