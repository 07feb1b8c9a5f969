"""Run the dev server as a process (for the demo).

    python -m devserver --state-file .demo/devserver.json [--clients-file clients.json]
                        [--auth-port N] [--api-port N] [--issuer-path /realms/demo]
                        [--dataset-size N] [--api-workers N] [--api-rate-limit N]

Registers ``demo-client`` (secret from ``DEVSERVER_DEMO_SECRET``, else a fixed dev
default; client_secret_basic + client_secret_post; scope ``read``), writes
``{"issuer", "token_url", "api_url", "jwks_url", "control_url", "pid"}`` to the state
file once both servers listen, and runs until SIGTERM/SIGINT. The state file is
removed on exit.

A clients file is a JSON list of ``DevServer.add_client`` keyword arguments, e.g.
``[{"client_id": "etl", "secret": "...", "auth_methods": ["client_secret_post"],
"scope": "read write", "token_lifetime": 300}]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from devserver.dataset import DEFAULT_SIZE
from devserver.httpd import WSGI_WORKERS
from devserver.server import DevServer

DEMO_CLIENT_ID = "demo-client"
DEFAULT_DEMO_SECRET = "devserver-demo-secret"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devserver", description=__doc__.split("\n")[0])
    parser.add_argument("--state-file", type=Path, required=True)
    parser.add_argument("--clients-file", type=Path)
    parser.add_argument("--auth-port", type=int, default=0)
    parser.add_argument("--api-port", type=int, default=0)
    parser.add_argument("--issuer-path", default="")
    parser.add_argument("--dataset-size", type=int, default=DEFAULT_SIZE)
    parser.add_argument(
        "--api-workers", type=int, default=WSGI_WORKERS, help="API requests served at once"
    )
    parser.add_argument(
        "--api-rate-limit",
        type=float,
        help="requests per second the API allows each client (429 with Retry-After beyond)",
    )
    return parser.parse_args(argv)


def load_clients(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    if not isinstance(data, list) or not all(isinstance(c, dict) for c in data):
        raise SystemExit(f"{path}: expected a JSON list of client objects")
    return data


def write_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(path)  # readers never see a half-written file


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = DevServer(
        auth_port=args.auth_port,
        api_port=args.api_port,
        issuer_path=args.issuer_path,
        dataset_size=args.dataset_size,
        api_workers=args.api_workers,
    )
    if args.api_rate_limit:
        server.api_rate_limit.configure(per_second=args.api_rate_limit)
    server.add_client(
        DEMO_CLIENT_ID,
        secret=os.environ.get("DEVSERVER_DEMO_SECRET") or DEFAULT_DEMO_SECRET,
        auth_methods=["client_secret_basic", "client_secret_post"],
        scope="read",
    )
    for spec in load_clients(args.clients_file) if args.clients_file else []:
        spec = dict(spec)
        server.add_client(spec.pop("client_id"), **spec)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    server.start()
    try:
        write_state(
            args.state_file,
            {
                "issuer": server.issuer,
                "token_url": server.token_url,
                "api_url": server.api_url,
                "jwks_url": server.jwks_url,
                "control_url": server.control_url,
                "pid": os.getpid(),
            },
        )
        print(
            f"devserver: issuer {server.issuer}, API {server.api_url}, client {DEMO_CLIENT_ID}",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        args.state_file.unlink(missing_ok=True)
    print("devserver: stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
