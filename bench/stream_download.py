"""One 1 GiB answer streamed to a file: OAuthHttpOperator vs requests and curl, same server.

Two answers: NDJSON (``response_format="ndjson"``, records counted as they pass) and a gzip
file (``application/gzip``, kept compressed: ``response_format="raw"``; then once more as
``"ndjson"``, counting its records on a side decompressor). Each download runs in a fresh
process (as an Airflow task does) and reports its peak RSS growth over the RSS it had before
the download began (target: under 64 MiB) and its time; the baselines, in the same run against
the same server, are a hand-written ``requests`` ``iter_content`` loop (1 MiB chunks) and
``curl -o`` when curl is installed. Runs are interleaved; medians are printed.

The server (this file with ``--serve``, its own process) sends one precomputed block over and
over with ``sendall``: much faster than any client, so the times are the clients'.

    uv run python bench/stream_download.py [--mib 1024] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

BLOCK_MIB = 8
TOKEN = b'{"access_token":"bench-token","token_type":"Bearer","expires_in":3600}'


def ndjson_block(size: int) -> bytes:
    """About ``size`` bytes of NDJSON records (whole lines), some text barely compressible."""
    rng = random.Random(25)
    lines, total, n = [], 0, 0
    while total < size:
        record = {
            "id": n,
            "number": f"SO-{n:08d}",
            "status": ("open", "paid", "shipped", "cancelled")[n % 4],
            "amount": round(n * 1.37 % 10_000, 2),
            "updated_at": f"2026-01-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:00Z",
            "note": rng.randbytes(48).hex(),
        }
        line = json.dumps(record, separators=(",", ":")).encode() + b"\n"
        lines.append(line)
        total += len(line)
        n += 1
    return b"".join(lines)


def serve(total: int) -> None:
    """Serve ``/export.ndjson`` and ``/export.ndjson.gz`` (about ``total`` bytes each)."""
    plain = ndjson_block(BLOCK_MIB * 1024 * 1024)
    member = gzip.compress(plain, compresslevel=6)  # gzip members concatenate into one file
    bodies = {
        b"/export.ndjson": (plain, max(1, total // len(plain)), b"application/x-ndjson"),
        b"/export.ndjson.gz": (member, max(1, total // len(member)), b"application/gzip"),
    }
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    info = {
        "port": listener.getsockname()[1],
        "records_per_block": plain.count(b"\n"),
        "repeats": {path.decode(): repeat for path, (_, repeat, _) in bodies.items()},
    }
    print("READY " + json.dumps(info), flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=answer, args=(conn, bodies), daemon=True).start()


def answer(conn: socket.socket, bodies: dict[bytes, tuple[bytes, int, bytes]]) -> None:
    with conn:
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = conn.recv(65536)
            if not chunk:
                return
            buffer += chunk
        method, target = buffer.split(b" ", 2)[:2]
        if method == b"POST":
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            conn.sendall(head + b"Content-Length: %d\r\n\r\n" % len(TOKEN) + TOKEN)
            return
        path = target.split(b"?")[0]
        if path not in bodies:
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            return
        block, repeat, content_type = bodies[path]
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n" % (content_type, len(block) * repeat)
        )
        view = memoryview(block)
        for _ in range(repeat):
            conn.sendall(view)


CLIENT = textwrap.dedent(
    """
    import json, resource, sys, time
    variant, url, path, target = sys.argv[1:5]

    def rss_mib():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize() / 2**20

    if variant.startswith("OAuthHttpOperator"):
        # Imported before the clock starts, as requests is for the baseline: a task's imports
        # are a fixed cost, not the download's.
        import airflow_provider_oauthcc.hooks.oauth_cc
        import airflow_provider_oauthcc.pull.stream
        from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator

        operator = OAuthHttpOperator(
            task_id="download", oauth_conn_id="bench_oauth", endpoint=path,
            response_format=variant.split(":")[1], output_path="file://" + target,
        )
        before = rss_mib()
        started = time.perf_counter()
        summary = operator.execute({})
        records = summary["records"]
    else:
        # The same process as the task's: Airflow and the provider imported (a process that
        # imported Airflow downloads its first large answer more slowly, whatever the client).
        import airflow_provider_oauthcc.operators.oauth_http
        import requests

        before = rss_mib()
        started = time.perf_counter()
        token = requests.post(url + "/token", data={"grant_type": "client_credentials"}).json()
        headers = {"Authorization": "Bearer " + token["access_token"]}
        with requests.get(url + path, headers=headers, stream=True) as response, \\
                open(target, "wb") as out:
            response.raise_for_status()
            for chunk in response.iter_content(1024 * 1024):
                out.write(chunk)
        records = None
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps({"seconds": seconds, "growth_mib": peak - before,
                                  "records": records}))
    """
)


def run_client(variant: str, url: str, path: str, target: Path, env: dict[str, str]) -> dict:
    if variant == "curl -o":
        started = time.perf_counter()
        token = subprocess.run(
            ["curl", "-sf", "-X", "POST", f"{url}/token"], capture_output=True, check=True
        )
        access = json.loads(token.stdout)["access_token"]
        subprocess.run(
            ["curl", "-sf", "-H", f"Authorization: Bearer {access}", "-o", str(target), url + path],
            check=True,
        )  # fmt: skip
        return {"seconds": time.perf_counter() - started, "growth_mib": None, "records": None}
    result = subprocess.run(
        [sys.executable, "-c", CLIENT, variant, url, path, str(target)],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{result.stderr[-3000:]}")
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    measured: dict = json.loads(line.removeprefix("RESULT "))
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="size of each answer")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.mib * 1024 * 1024)
        return

    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--mib", str(args.mib)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        ready = server.stdout.readline()
        if not ready.startswith("READY "):
            raise SystemExit("the server did not start")
        info = json.loads(ready.removeprefix("READY "))
        url = f"http://127.0.0.1:{info['port']}"
        env = dict(
            os.environ,
            PYTHONPATH=str(Path(__file__).resolve().parents[1]),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW_CONN_BENCH_OAUTH=json.dumps(
                {
                    "conn_type": "oauth2_client_credentials",
                    "host": url,
                    "login": "bench-client",
                    "password": "bench-secret",
                    "extra": {"auth_url": f"{url}/token"},
                }
            ),
        )
        measure(url, info, env, args.repeats)
    finally:
        server.terminate()
        server.wait(timeout=10)


CASES = {
    "NDJSON": ("/export.ndjson", ["OAuthHttpOperator:ndjson"]),
    "gzip file": ("/export.ndjson.gz", ["OAuthHttpOperator:raw", "OAuthHttpOperator:ndjson"]),
}


def measure(url: str, info: dict, env: dict[str, str], repeats: int) -> None:
    baselines = ["requests iter_content"] + (["curl -o"] if shutil.which("curl") else [])
    times: dict[tuple[str, str], list[float]] = {}
    growth: dict[tuple[str, str], list[float]] = {}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="oauthcc-bench-stream-") as tmp:
        target = Path(tmp) / "out"
        for _ in range(repeats):
            for case, (path, ours) in CASES.items():
                for variant in [*baselines, *ours]:
                    result = run_client(variant, url, path, target, env)
                    sizes[case] = target.stat().st_size
                    target.unlink()
                    times.setdefault((case, variant), []).append(result["seconds"])
                    if result["growth_mib"] is not None:
                        growth.setdefault((case, variant), []).append(result["growth_mib"])
                    if variant == "OAuthHttpOperator:ndjson":
                        repeat = info["repeats"][path]
                        expected = info["records_per_block"] * repeat
                        assert result["records"] == expected, (result["records"], expected)

    print(
        f"one answer to a local file, {repeats} interleaved rounds; load average "
        f"{os.getloadavg()[0]:.1f}; a fresh process per download; ratios: the median of the "
        "per-round ratios (min..max)"
    )
    print(f"{'answer':<10} {'client':<25} {'GiB/s':>6} {'vs requests':>17} {'vs curl':>17} "
          f"{'RSS growth MiB':>15}")  # fmt: skip
    for case in CASES:
        for variant in [*baselines, *CASES[case][1]]:
            mine = times[(case, variant)]
            ratios = []
            for base in baselines:
                per_round = [a / b for a, b in zip(mine, times[(case, base)], strict=True)]
                ratios.append(
                    f"{statistics.median(per_round):.2f}x ({min(per_round):.2f}..{max(per_round):.2f})"
                )
            rss = growth.get((case, variant))
            shown = variant.replace("OAuthHttpOperator:", "OAuthHttpOperator ")
            print(
                f"{case:<10} {shown:<25} {sizes[case] / 2**30 / statistics.median(mine):>6.2f} "
                + " ".join(f"{r:>17}" for r in ratios)
                + f" {statistics.median(rss) if rss else float('nan'):>15.1f}"
            )


if __name__ == "__main__":
    main()
