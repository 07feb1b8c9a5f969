"""The dev server in its own process (its own GIL), for load tests and subprocess-based tests."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests


@contextmanager
def devserver_process(clients: list[dict[str, Any]], *extra_args: str) -> Iterator[dict[str, Any]]:
    """Start ``python -m devserver``; yield its state (issuer, token_url, api_url, control_url)."""
    with tempfile.TemporaryDirectory() as tmp:
        state_file = Path(tmp) / "state.json"
        clients_file = Path(tmp) / "clients.json"
        clients_file.write_text(json.dumps(clients))
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devserver",
                "--state-file",
                str(state_file),
                "--clients-file",
                str(clients_file),
                *extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 60
            while not state_file.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    stderr = process.stderr.read().decode() if process.stderr else ""
                    raise RuntimeError(f"devserver did not start: {stderr[-2000:]}")
                time.sleep(0.05)
            yield json.loads(state_file.read_text())
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def control_stats(state: dict[str, Any]) -> dict[str, Any]:
    response = requests.get(f"{state['control_url']}/stats", timeout=10)
    response.raise_for_status()
    stats: dict[str, Any] = response.json()
    return stats
