"""The file cache's default folder comes from Airflow's configuration: ``[oauthcc]
token_cache_dir`` (declared in provider info, so ``airflow config`` knows it), by default
``{AIRFLOW_HOME}/oauthcc-token-cache`` with Airflow's own home, ``~/airflow`` when
``AIRFLOW_HOME`` is not set. The connection's ``cache_dir`` extra wins."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook
from devserver import DevServer
from tests.support.connections import airflow_conn, conn_json

from .conftest import SECRET

ROOT = Path(__file__).resolve().parents[2]
OPTION = "AIRFLOW__OAUTHCC__TOKEN_CACHE_DIR"


def file_conn(server: DevServer, **extra: str) -> str:
    return conn_json(
        server.api_url, "app", SECRET, auth_url=server.token_url, cache_backend="file", **extra
    )


def entries(folder: Path) -> int:
    return len(list(folder.glob("*.token")))


def test_the_configured_folder_holds_the_entries(
    server: DevServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OPTION, str(tmp_path / "configured"))
    with airflow_conn("crm_file", file_conn(server)):
        assert OAuthCCHook(oauth_conn_id="crm_file").run("/v1/whoami").status_code == 200
    assert entries(tmp_path / "configured") == 1


def test_the_connection_extra_wins(
    server: DevServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OPTION, str(tmp_path / "configured"))
    with airflow_conn("crm_file", file_conn(server, cache_dir=str(tmp_path / "conn"))):
        assert OAuthCCHook(oauth_conn_id="crm_file").run("/v1/whoami").status_code == 200
    assert entries(tmp_path / "conn") == 1
    assert not (tmp_path / "configured").exists()


def test_a_relative_configured_folder_fails_open(
    server: DevServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(OPTION, "relative/cache")
    with airflow_conn("crm_file", file_conn(server)):
        assert OAuthCCHook(oauth_conn_id="crm_file").run("/v1/whoami").status_code == 200
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("airflow_provider_oauthcc")
    ]
    assert warnings == [
        "Token cache 'file' cannot be used (the token cache folder must be an absolute path, "
        "not relative/cache); using the in-process cache"
    ]


def _without_airflow_home(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh process whose user home is ``home``, with no AIRFLOW_HOME,
    airflow.cfg path or token_cache_dir set."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("AIRFLOW_HOME", "AIRFLOW_CONFIG", OPTION, "XDG_CACHE_HOME")
    }
    env.update(HOME=str(home), **extra)
    return env


def test_by_default_under_airflows_own_home_when_airflow_home_is_not_set(
    server: DevServer, tmp_path: Path
) -> None:
    home = tmp_path / "user"
    home.mkdir()
    code = (
        "from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook\n"
        "print(OAuthCCHook(oauth_conn_id='crm_file').run('/v1/whoami').status_code)\n"
    )
    env = _without_airflow_home(home, AIRFLOW_CONN_CRM_FILE=file_conn(server))
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "200"
    assert entries(home / "airflow" / "oauthcc-token-cache") == 1
    assert not (home / ".cache" / "oauthcc-token-cache").exists()


def test_airflow_config_knows_the_option(tmp_path: Path) -> None:
    home = tmp_path / "user"
    home.mkdir()
    airflow = Path(sys.executable).with_name("airflow")
    done = subprocess.run(
        [str(airflow), "config", "get-value", "oauthcc", "token_cache_dir"],
        cwd=ROOT,
        env=_without_airflow_home(home),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == str(home / "airflow" / "oauthcc-token-cache")
