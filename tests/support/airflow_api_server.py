"""A real ``airflow api-server`` on 127.0.0.1 for end-to-end tests of the UI and its API.

A throwaway AIRFLOW_HOME with an SQLite database (``airflow db migrate`` first), the
SimpleAuthManager with one admin user, a Fernet key (so secrets are stored encrypted, as in
production), the Test button enabled, and this provider installed (it is, editable, in the
environment that runs the tests). One server per test process: ``shared_api_server()`` starts
it on first use and stops it when the process exits.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

ADMIN_USER = "admin"
START_TIMEOUT = 240.0  # migrate + start on a loaded 2-core machine
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AirflowUiServer:
    """An Airflow web server process with its own home: ``url``, ``cli()``,
    ``stored_connection()``, ``stop()``; subclasses say how to start it and where its health is."""

    health_path = "/"
    name = "airflow"

    def __init__(self, prefix: str) -> None:
        self.home = Path(tempfile.mkdtemp(prefix=prefix))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_password = secrets.token_urlsafe(12)
        self._log = self.home / "server.log"
        self._process: subprocess.Popen[bytes] | None = None
        self.env = _clean_environment()

    def _spawn(self, argv: list[str], deadline: float) -> None:
        """Starts ``airflow *argv`` in its own process group and waits until it is healthy."""
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                [AIRFLOW, *argv],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group (workers too), stopped as one
            )
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log_tail()}")
            try:
                if requests.get(self.url + self.health_path, timeout=5).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} not healthy in time:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        return self._log.read_text(errors="replace")[-chars:] if self._log.exists() else ""

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the ``airflow`` CLI against this server's home (database, Fernet key)."""
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


class AirflowApiServer(AirflowUiServer):
    """``airflow api-server`` (Airflow 3) with its own home; also ``api()``."""

    health_path = "/api/v2/monitor/health"
    name = "airflow api-server"

    def __init__(self) -> None:
        super().__init__("oauthcc-api-server-")
        self._token: str | None = None
        passwords = self.home / "simple_auth_manager_passwords.json"
        passwords.write_text(json.dumps({ADMIN_USER: self.admin_password}))
        self.env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
                "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                # Airflow 3.1.0 signs tokens with iss=None unless set, which newer PyJWT refuses.
                "AIRFLOW__API_AUTH__JWT_ISSUER": "oauthcc-e2e",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            }
        )

    def start(self) -> AirflowApiServer:
        deadline = time.monotonic() + START_TIMEOUT
        migrate = self.cli("db", "migrate", timeout=START_TIMEOUT)
        if migrate.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{migrate.stderr[-3000:]}")
        self._spawn(
            ["api-server", "--host", "127.0.0.1", "--port", str(self.port), "-w", "1"], deadline
        )
        return self

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call the REST / UI API as the admin (``path`` like ``/api/v2/connections``)."""
        if self._token is None:
            self._token = self._login()
        headers = {"Authorization": f"Bearer {self._token}", **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=60, **kwargs)

    def _login(self) -> str:
        response = requests.post(
            f"{self.url}/auth/token",
            json={"username": ADMIN_USER, "password": self.admin_password},
            timeout=60,
        )
        response.raise_for_status()
        return str(response.json()["access_token"])


def _clean_environment() -> dict[str, str]:
    """This process's environment without Airflow settings or connections of its own."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))
        and key != "AIRFLOW_HOME"
    }


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


_shared: AirflowApiServer | None = None
_start_failure: str | None = None


def shared_api_server() -> AirflowApiServer:
    """The test process's API server, started on first use and stopped at exit.

    If it does not start, every test that needs it fails with the same reason, at once.
    """
    global _shared, _start_failure
    if _start_failure is not None:
        raise RuntimeError(
            f"the API server did not start (see the first failure): {_start_failure}"
        )
    if _shared is None:
        server = AirflowApiServer()
        try:
            server.start()
        except Exception as exc:
            server.stop()
            _start_failure = str(exc)[:300]
            raise
        atexit.register(server.stop)
        _shared = server
    return _shared
