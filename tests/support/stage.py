"""Which stage of `make test` runs the suite, and what that stage's environment must have.

scripts/test.sh sets ``OAUTHCC_TEST_STAGE`` for each stage (``newest``, ``floor``, ``3.0``,
``3.1``). Outside `make test` it is unset and optional parts skip. Inside a stage, a part that
the stage's dependency group installs is required: a test that needs it fails instead of
skipping, so a broken environment cannot hide a test.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

STAGE = os.environ.get("OAUTHCC_TEST_STAGE", "")

# The pyproject dependency group each stage's environment is synced from.
GROUPS = {
    "newest": "airflow-latest",
    "floor": "airflow-floor",
    "3.0": "airflow-3-0",
    "3.1": "airflow-3-1",
}

# Optional modules each stage's group installs (pyproject.toml [dependency-groups]).
REQUIRED_MODULES: dict[str, frozenset[str]] = {
    "floor": frozenset({"wtforms"}),
    "3.0": frozenset({"wtforms"}),
    "3.1": frozenset({"wtforms"}),
}


def requires(module: str) -> bool:
    return module in REQUIRED_MODULES.get(STAGE, frozenset())


def importorskip(module: str, *, reason: str) -> ModuleType:
    """``pytest.importorskip``, except in a stage whose environment must have ``module``."""
    if not requires(module):
        return pytest.importorskip(module, reason=reason)
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pytest.fail(f"stage {STAGE} requires {module} ({reason}), and it is missing: {exc}")


def airflow_3_0_dags_test_gap() -> pytest.MarkDecorator:
    """Skip on Airflow 3.0.x a test that runs ``airflow dags test`` of a DAG file and scans
    its output: there the command needs ``airflow dags reserialize`` first
    (apache/airflow#51644), and 3.0's in-process test supervisor logs every MaskSecret value at
    DEBUG (fixed in 3.1). The example-DAG tests run 3.0 with the reserialize step."""
    from importlib.metadata import version

    return pytest.mark.skipif(
        version("apache-airflow").startswith("3.0."),
        reason="Airflow 3.0's `dags test` needs `dags reserialize` first (apache/airflow#51644) "
        "and its in-process supervisor logs MaskSecret values at DEBUG (fixed in 3.1)",
    )
