"""Importing the package on an unsupported Airflow fails at once with a clear message, and
importing it never imports Airflow (DAG parsing and the Airflow-free OAuth core stay cheap)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def _with_airflow(version: str) -> str:
    # An Airflow module of the given version already imported, as in a DAG file that imports
    # airflow first; the guard reads its __version__.
    return (
        "import sys, types\n"
        "airflow = types.ModuleType('airflow')\n"
        f"airflow.__version__ = {version!r}\n"
        "sys.modules['airflow'] = airflow\n"
        "import airflow_provider_oauthcc\n"
    )


@pytest.mark.parametrize("version", ["2.10.5", "2.9.0", "2.10.6rc1", "2"])
def test_an_older_airflow_is_refused_with_a_clear_message(version: str) -> None:
    result = _run(_with_airflow(version))
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: airflow-provider-oauthcc ")
    assert f"needs Apache Airflow 2.11.0 or newer, and this is Airflow {version}" in last


@pytest.mark.parametrize(
    "version",
    ["2.11.0", "2.11.0rc1", "2.11", "3.0.6", "3.1.0", "3.3.2", "3.4.0.dev0", "3.10.0"],
)
def test_a_supported_airflow_is_accepted(version: str) -> None:
    result = _run(_with_airflow(version))
    assert result.returncode == 0, result.stderr


def test_the_installed_airflow_is_checked_without_importing_it() -> None:
    result = _run(
        "import sys\n"
        "from unittest import mock\n"
        "with mock.patch('importlib.metadata.version', return_value='2.10.5'):\n"
        "    try:\n"
        "        import airflow_provider_oauthcc\n"
        "    except RuntimeError as exc:\n"
        "        print(exc)\n"
        "print('airflow' in sys.modules)\n"
    )
    assert result.returncode == 0, result.stderr
    message, imported = result.stdout.strip().splitlines()
    assert "this is Airflow 2.10.5" in message
    assert imported == "False"


def test_importing_the_package_and_its_oauth_core_does_not_import_airflow() -> None:
    result = _run(
        "import sys, airflow_provider_oauthcc, airflow_provider_oauthcc.auth.config\n"
        "print(sorted(m for m in ('airflow', 'authlib', 'cryptography') if m in sys.modules))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
