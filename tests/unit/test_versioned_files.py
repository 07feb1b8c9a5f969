"""Every test file that touches version-specific code is in tests/conftest.py's VERSIONED list,
so that `make test` runs it on Airflow 3.0 and 3.1 too."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import VERSIONED

TESTS = Path(__file__).resolve().parents[1]

# What differs between Airflow versions: deferral (triggers, sensors, the triggerer), the
# Airflow exception family, what reaches Airflow's logs, and `airflow dags test` itself.
VERSION_SPECIFIC = re.compile(
    r"airflow_provider_oauthcc\.(triggers|sensors)"
    r"|tests\.support\.(deferral|leak_scan|triggerer_loop)"
    r"|airflow\.exceptions|Airflow\w*Exception|TaskDeferred"
    r"|deferrable=True"
    r"|\bdags test\b|\"dags\", \"test\""
)


def _version_specific_files() -> set[str]:
    return {
        path.name
        for path in TESTS.rglob("test_*.py")
        if path.name != Path(__file__).name
        and VERSION_SPECIFIC.search(path.read_text(encoding="utf-8"))
    }


def test_every_version_specific_test_file_is_versioned() -> None:
    missing = sorted(_version_specific_files() - VERSIONED)
    assert not missing, f"add to VERSIONED in tests/conftest.py: {missing}"


def test_every_versioned_name_is_a_test_file() -> None:
    existing = {path.name for path in TESTS.rglob("test_*.py")}
    assert not VERSIONED - existing, sorted(VERSIONED - existing)


def test_the_pattern_finds_the_deferral_tests() -> None:
    assert {"test_deferrable_trigger.py", "test_fail_fast_dags.py"} <= _version_specific_files()
