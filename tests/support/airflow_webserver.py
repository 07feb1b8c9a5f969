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

import secrets
import time

from tests.support.airflow_api_server import AirflowUiServer, _fernet_key

ADMIN_USER = "admin"
START_TIMEOUT = 240.0  # migrate + user + start on a loaded 2-core machine


class AirflowWebserver(AirflowUiServer):
    """``airflow webserver`` (Airflow 2, Flask AppBuilder) with its own home."""

    health_path = "/health"
    name = "airflow webserver"

    def __init__(self) -> None:
        super().__init__("oauthcc-webserver-")
        self.fernet_key = _fernet_key()
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
        self._spawn(["webserver", "--hostname", "127.0.0.1", "--port", str(self.port)], deadline)
        return self
