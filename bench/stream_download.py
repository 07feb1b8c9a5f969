"""One 1 GiB answer streamed to a file: OAuthHttpOperator vs curl and requests, same server.

Two answers: NDJSON (``response_format="ndjson"``, records counted as they pass) and a gzip
file (``application/gzip``, kept compressed: ``response_format="raw"``; then once more as
``"ndjson"``, counting its records on a side decompressor). Each download runs in a fresh
process (as an Airflow task does) that has imported Airflow, requests and the provider before
its clock starts; the operator's once-per-process Airflow setup (file-system registry, lineage
collector) also runs before the clock and is reported apart. Each reports its peak RSS growth
over the RSS it had before the download began (target: under 64 MiB) and its time. The
yardsticks, in the same run against the same server: ``curl -o`` when curl is installed, a
hand-written ``requests`` ``iter_content`` loop (1 MiB chunks), and that loop doing the same
work as the operator by hand (counting lines; gunzip on the side and count). Runs are
interleaved; medians are printed.

Each is measured twice (``--memory both``): with the file's pages taken from memory just freed
(``warm``, as on most machines) and fresh from the host (``cold``, as in a virtual machine that
returns freed memory to its hypervisor); see ``prepare``.

The server (this file with ``--serve``, its own process) sends one precomputed block over and
over with ``sendall``: much faster than any client, so the times are the clients'.

    uv run python bench/stream_download.py [--mib 1024] [--repeats 3] [--memory warm|cold|both]
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
COLD_WAIT_S = 4.0
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


def prepare(memory: str, scratch: str, size: int) -> None:
    """Just before a download's clock starts: the memory its file's pages will take.

    ``warm``: as on a machine whose memory is all in use (bare metal, most VMs): a file of
    ``size`` bytes is written and deleted, so the download's pages reuse memory just freed.
    ``cold``: as in a VM that hands freed memory back to its hypervisor (free page reporting,
    about two seconds after it is freed): wait, so each new page of the file comes from the
    host, which costs more than the copy itself.
    """
    if memory == "warm":
        block = bytes(8 * 1024 * 1024)
        with open(scratch, "wb") as out:
            for _ in range(0, size, len(block)):
                out.write(block)
        os.unlink(scratch)
    else:
        time.sleep(COLD_WAIT_S)


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
        "bytes": total,
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
    import json, os, resource, sys, time, zlib
    variant, url, path, target, memory, scratch, size = sys.argv[1:8]
    sys.path.insert(0, os.environ["BENCH_DIR"])
    from stream_download import prepare

    def rss_mib():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize() / 2**20

    # The same process as the task's: Airflow and the provider imported before the clock starts
    # (a task's imports are a fixed cost, not the download's).
    import airflow_provider_oauthcc.hooks.oauth_cc
    import airflow_provider_oauthcc.pull.stream
    from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
    import requests

    setup = 0.0
    if variant.startswith("OAuthHttpOperator"):
        # Airflow's own once-per-process setup, also before the clock, and timed apart: its
        # file-system registry (ObjectStoragePath imports every provider's file system) and its
        # lineage collector; the first token request's lazy imports.
        begun = time.perf_counter()
        from airflow_provider_oauthcc.airflow_compat import ObjectStoragePath
        from airflow.providers.common.compat.lineage.hook import get_hook_lineage_collector
        import authlib.integrations.requests_client

        ObjectStoragePath("file://" + os.path.dirname(target)).fs
        get_hook_lineage_collector()
        setup = time.perf_counter() - begun
        operator = OAuthHttpOperator(
            task_id="download", oauth_conn_id="bench_oauth", endpoint=path,
            response_format=variant.split(":")[1], output_path="file://" + target,
        )

    def by_hand(count, gunzip):
        token = requests.post(url + "/token", data={"grant_type": "client_credentials"}).json()
        headers = {"Authorization": "Bearer " + token["access_token"]}
        lines = 0
        inflate = zlib.decompressobj(wbits=31)
        with requests.get(url + path, headers=headers, stream=True) as response, \\
                open(target, "wb") as out:
            response.raise_for_status()
            for chunk in response.iter_content(1024 * 1024):
                out.write(chunk)
                if gunzip:
                    while chunk:
                        piece = inflate.decompress(chunk, 1024 * 1024)
                        lines += piece.count(b"\\n")
                        if inflate.eof:
                            chunk, inflate = inflate.unused_data, zlib.decompressobj(wbits=31)
                        else:
                            chunk = inflate.unconsumed_tail
                elif count:
                    lines += chunk.count(b"\\n")
        return lines if count or gunzip else None

    prepare(memory, scratch, int(size))
    before = rss_mib()
    started = time.perf_counter()
    if variant.startswith("OAuthHttpOperator"):
        records = operator.execute({})["records"]
    else:
        records = by_hand("count" in variant, "gunzip" in variant)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps({"seconds": seconds, "growth_mib": peak - before,
                                  "records": records, "setup": setup}))
    """
)


def run_client(
    variant: str, url: str, path: str, target: Path, env: dict[str, str], memory: str, size: int
) -> dict:
    scratch = target.with_name("scratch")
    if variant == "curl -o":
        prepare(memory, str(scratch), size)
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
    command = [sys.executable, "-c", CLIENT, variant, url, path, str(target), memory, str(scratch)]
    result = subprocess.run(
        [*command, str(size)], env=env, capture_output=True, text=True, timeout=900
    )
    if result.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{result.stderr[-3000:]}")
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    measured: dict = json.loads(line.removeprefix("RESULT "))
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="size of each answer")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory", choices=["warm", "cold", "both"], default="both")
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
            BENCH_DIR=str(Path(__file__).resolve().parent),
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
        for memory in ["warm", "cold"] if args.memory == "both" else [args.memory]:
            measure(url, info, env, args.repeats, memory)
    finally:
        server.terminate()
        server.wait(timeout=10)


# Per answer: each client, and for ours the hand-written loop that does the same work.
CASES: dict[str, tuple[str, list[tuple[str, str | None]]]] = {
    "NDJSON": (
        "/export.ndjson",
        [
            ("requests", None),
            ("curl -o", None),
            ("requests+count", None),
            ("OAuthHttpOperator:ndjson", "requests+count"),
        ],
    ),
    "gzip file": (
        "/export.ndjson.gz",
        [
            ("requests", None),
            ("curl -o", None),
            ("requests+gunzip+count", None),
            ("OAuthHttpOperator:raw", "requests"),
            ("OAuthHttpOperator:ndjson", "requests+gunzip+count"),
        ],
    ),
}
LABELS = {
    "requests": "requests iter_content loop",
    "requests+count": "  the same, counting lines",
    "requests+gunzip+count": "  the same, gunzip + count",
    "curl -o": "curl -o",
    "OAuthHttpOperator:ndjson": "OAuthHttpOperator ndjson",
    "OAuthHttpOperator:raw": "OAuthHttpOperator raw",
}


def measure(url: str, info: dict, env: dict[str, str], repeats: int, memory: str) -> None:
    curl = shutil.which("curl") is not None
    times: dict[tuple[str, str], list[float]] = {}
    growth: dict[tuple[str, str], list[float]] = {}
    setup: list[float] = []
    sizes: dict[str, int] = {}
    size = info["bytes"]
    with tempfile.TemporaryDirectory(prefix="oauthcc-bench-stream-") as tmp:
        target = Path(tmp) / "out"
        for _ in range(repeats):
            for case, (path, variants) in CASES.items():
                for variant, _same in variants:
                    if variant == "curl -o" and not curl:
                        continue
                    result = run_client(variant, url, path, target, env, memory, size)
                    sizes[case] = target.stat().st_size
                    target.unlink()
                    times.setdefault((case, variant), []).append(result["seconds"])
                    if result["growth_mib"] is not None:
                        growth.setdefault((case, variant), []).append(result["growth_mib"])
                    if result.get("setup"):
                        setup.append(result["setup"])
                    if result["records"] is not None:
                        expected = info["records_per_block"] * info["repeats"][path]
                        assert result["records"] == expected, (variant, result["records"], expected)

    print(
        f"\n{memory} memory: one answer to a local file, {repeats} interleaved rounds; load "
        f"average {os.getloadavg()[0]:.1f}; a fresh process per download; ratios: the median "
        "of the per-round ratios (min..max)"
    )
    print(f"{'answer':<10} {'client':<27} {'GiB/s':>6} {'vs requests':>17} {'vs curl':>17} "
          f"{'vs same by hand':>17} {'RSS growth MiB':>15}")  # fmt: skip

    def ratio(mine: list[float], base: str | None, case: str) -> str:
        if base is None or (case, base) not in times:
            return "-"
        per_round = [a / b for a, b in zip(mine, times[(case, base)], strict=True)]
        return f"{statistics.median(per_round):.2f}x ({min(per_round):.2f}..{max(per_round):.2f})"

    for case, (_path, variants) in CASES.items():
        for variant, same in variants:
            if (case, variant) not in times:
                continue
            mine = times[(case, variant)]
            rss = growth.get((case, variant))
            columns = [ratio(mine, "requests", case), ratio(mine, "curl -o", case)]
            print(
                f"{case:<10} {LABELS[variant]:<27} {sizes[case] / 2**30 / statistics.median(mine):>6.2f} "
                + " ".join(f"{c:>17}" for c in [*columns, ratio(mine, same, case)])
                + f" {statistics.median(rss) if rss else float('nan'):>15.1f}"
            )
    print(
        f"the operator's once-per-process setup before the clock (Airflow's file-system registry "
        f"and lineage collector, lazy imports): median {statistics.median(setup):.2f} s"
    )


if __name__ == "__main__":
    main()
