"""The real `airflow` CLI sees the provider and tests connections through our hook."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devserver import DevServer
from tests.support.connections import conn_json

pytestmark = pytest.mark.e2e

SECRET = "s3cret-Value-9f8e7d"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    with DevServer() as srv:
        srv.add_client("app", secret=SECRET, scope="read")
        yield srv


def airflow_version() -> tuple[int, int]:
    from airflow import __version__

    major, minor = __version__.split(".")[:2]
    return int(major), int(minor)


def airflow(*args: str, home: Path, **conns: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, AIRFLOW_HOME=str(home), AIRFLOW__CORE__TEST_CONNECTION="Enabled")
    env.update({f"AIRFLOW_CONN_{k.upper()}": v for k, v in conns.items()})
    return subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=180)


def test_providers_hooks_lists_the_connection_type(tmp_path: Path) -> None:
    result = airflow("providers", "hooks", "--output", "plain", home=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    line = next(x for x in result.stdout.splitlines() if "oauth2_client_credentials" in x)
    assert "airflow_provider_oauthcc.hooks.oauth_cc.OAuthCCHook" in line


def test_connections_test_success_and_invalid_client(server: DevServer, tmp_path: Path) -> None:
    good = conn_json(server.api_url, "app", SECRET, auth_url=server.token_url, scope="read")
    result = airflow("connections", "test", "crm", home=tmp_path, crm=good)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Connection success!" in result.stdout
    assert server.stats.token_requests_ok == 1

    wrong = conn_json(server.api_url, "app", "wrong-secret-42", auth_url=server.token_url)
    result = airflow("connections", "test", "crm", home=tmp_path, crm=wrong)
    assert "Connection failed!" in result.stdout and "invalid_client" in result.stdout
    if airflow_version() >= (3, 2):  # 3.1's CLI exits 0 after a failed test
        assert result.returncode != 0
    for stream in (result.stdout, result.stderr):
        assert "wrong-secret-42" not in stream and SECRET not in stream
