"""A real Airflow 2.x ``airflow webserver`` (Flask AppBuilder UI) on 127.0.0.1 for browser tests.

The Airflow 2 mirror of tests/support/airflow_api_server.py: a throwaway AIRFLOW_HOME with an
SQLite database (``airflow db migrate`` first), a fixed Fernet key (secrets stored encrypted,
as in production), the Test button enabled (``[core] test_connection = Enabled``), one gunicorn
worker, and one admin user created with ``airflow users create`` who logs in through the FAB
login form. A logged-in user rather than ``AUTH_ROLE_PUBLIC = "Admin"``: on Airflow 2.x the
REST API that the Test button calls (session auth backend) answers 401 to an anonymous user,
even one the UI treats as an admin.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from tests.support.airflow_api_server import AIRFLOW, _clean_environment, _fernet_key, _free_port

ADMIN_USER = "admin"
START_TIMEOUT = 240.0  # migrate + user + start on a loaded 2-core machine


class AirflowWebserver:
    """``airflow webserver`` with its own home; ``url``, ``cli()``, ``stored_connection()``."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="oauthcc-webserver-"))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_password = secrets.token_urlsafe(12)
        self.fernet_key = _fernet_key()
        self._log = self.home / "webserver.log"
        self._process: subprocess.Popen[bytes] | None = None
        self.env = _clean_environment()
        self.env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
                "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                "AIRFLOW__WEBSERVER__SECRET_KEY": secrets.token_urlsafe(32),
                "AIRFLOW__WEBSERVER__WORKERS": "1",
                "AIRFLOW__WEBSERVER__WEB_SERVER_MASTER_TIMEOUT": str(int(START_TIMEOUT)),
                "AIRFLOW__WEBSERVER__WORKER_REFRESH_INTERVAL": "86400",
                "AIRFLOW__WEBSERVER__WARN_DEPLOYMENT_EXPOSURE": "False",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            }
        )

    def start(self) -> AirflowWebserver:
        deadline = time.monotonic() + START_TIMEOUT
        for step in (
            ("db", "migrate"),
            (
                "users",
                "create",
                "--username",
                ADMIN_USER,
                "--password",
                self.admin_password,
                "--role",
                "Admin",
                "--firstname",
                "Ada",
                "--lastname",
                "Admin",
                "--email",
                "admin@example.com",
            ),
        ):
            result = self.cli(*step, timeout=START_TIMEOUT)
            if result.returncode != 0:
                raise RuntimeError(f"airflow {step[0]} {step[1]} failed:\n{result.stderr[-3000:]}")
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                [AIRFLOW, "webserver", "--hostname", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group (gunicorn + worker), stopped as one
            )
        self._wait_until_healthy(deadline)
        return self

    def _wait_until_healthy(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"airflow webserver exited at start:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.url}/health", timeout=5).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"airflow webserver not healthy in time:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        return self._log.read_text(errors="replace")[-chars:] if self._log.exists() else ""

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the ``airflow`` CLI against this webserver's home (database, Fernet key)."""
        return subprocess.run(
            [AIRFLOW, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def stored_connection(self, conn_id: str) -> dict[str, Any]:
        """The connection as stored, secrets in clear (``airflow connections get -o json``)."""
        result = self.cli("connections", "get", conn_id, "-o", "json")
        if result.returncode != 0:
            raise RuntimeError(f"airflow connections get {conn_id} failed: {result.stderr[-2000:]}")
        start = result.stdout.index("[")
        rows: list[dict[str, Any]] = json.loads(result.stdout[start:])
        return rows[0]

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        shutil.rmtree(self.home, ignore_errors=True)
