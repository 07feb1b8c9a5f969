"""The declared dependencies are complete, and the floor environment is exactly their minimums.

An installer may pick any version a requirement allows; the floor group pins each direct
dependency to its declared minimum so that the floor test run is the lowest such install.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support import stage

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "airflow_provider_oauthcc"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DECLARED = [
    Requirement(text)
    for text in [
        *PYPROJECT["project"]["dependencies"],
        *(r for extra in PYPROJECT["project"]["optional-dependencies"].values() for r in extra),
    ]
]
FLOOR_GROUP = [Requirement(text) for text in PYPROJECT["dependency-groups"]["airflow-floor"]]


def _floor(requirement: Requirement) -> str:
    floors = [spec.version for spec in requirement.specifier if spec.operator == ">="]
    assert len(floors) == 1, f"{requirement} needs exactly one '>=' floor"
    return floors[0]


def _pins() -> dict[str, str]:
    return {
        canonicalize_name(r.name): spec.version
        for r in FLOOR_GROUP
        for spec in r.specifier
        if spec.operator == "=="
    }


def test_every_declared_dependency_has_a_floor_and_the_floor_group_pins_it() -> None:
    pins = _pins()
    wrong = {
        r.name: (f">={_floor(r)}", f"=={pins.get(canonicalize_name(r.name))}")
        for r in DECLARED
        if canonicalize_name(r.name) not in pins
        or Version(pins[canonicalize_name(r.name)]) != Version(_floor(r))
    }
    assert not wrong, f"declared floor vs airflow-floor pin: {wrong}"


def _imported_modules() -> set[str]:
    """Every absolute import in the package, lazy ones inside functions included."""
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module)
    return found


def _distribution_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "airflow":
        if parts[1:2] == ["providers"]:
            # airflow.providers.common.compat -> apache-airflow-providers-common-compat
            for depth in (2, 1):
                name = "apache-airflow-providers-" + "-".join(parts[2 : 2 + depth])
                if len(parts) >= 2 + depth and _is_declared(name):
                    return name
            return "apache-airflow-providers-" + parts[2]
        return "apache-airflow"
    owners = packages_distributions().get(parts[0])
    return owners[0] if owners else parts[0]


def _is_declared(name: str) -> bool:
    return canonicalize_name(name) in {canonicalize_name(r.name) for r in DECLARED}


# Imported only on Airflow 2.x, for its Flask AppBuilder connection form
# (legacy_connection_form.py): apache-airflow 2.x requires both, Airflow 3 is never asked.
AIRFLOW_2_UI = {"flask_appbuilder", "flask_babel"}


def test_every_imported_distribution_is_declared() -> None:
    third_party = {
        module
        for module in _imported_modules()
        if module.split(".")[0] not in sys.stdlib_module_names
        and module.split(".")[0] not in {"airflow_provider_oauthcc", "__future__"}
        and module.split(".")[0] not in AIRFLOW_2_UI
    }
    assert any(m.startswith("airflow.providers.common.compat") for m in third_party)
    undeclared = sorted(
        f"{module} ({_distribution_of(module)})"
        for module in third_party
        if not _is_declared(_distribution_of(module))
    )
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def _installed(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _group_pin(group: str, name: str) -> str | None:
    for text in PYPROJECT["dependency-groups"][group]:
        requirement = Requirement(text)
        if canonicalize_name(requirement.name) == canonicalize_name(name):
            return next(s.version for s in requirement.specifier if s.operator == "==")
    return None


@pytest.mark.skipif(not stage.STAGE, reason="inside `make test` only (OAUTHCC_TEST_STAGE)")
def test_the_stage_runs_the_airflow_its_group_pins() -> None:
    """A stage on the wrong Airflow would run the other versions' skips and miss their tests."""
    pinned = _group_pin(stage.GROUPS[stage.STAGE], "apache-airflow")
    assert pinned is not None
    assert _installed("apache-airflow") == pinned


@pytest.mark.skipif(
    stage.STAGE != "floor", reason="the floor stage of `make test` (OAUTHCC_TEST_STAGE=floor)"
)
def test_the_floor_environment_has_exactly_the_declared_minimums() -> None:
    pins = _pins()
    installed = {name: _installed(name) for name in pins}
    wrong = {
        name: (pins[name], got)
        for name, got in installed.items()
        if got is None or Version(got) != Version(pins[name])
    }
    assert not wrong, f"pinned vs installed in this floor environment: {wrong}"


def test_the_version_is_the_one_in_the_package() -> None:
    from airflow_provider_oauthcc import __version__

    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "airflow_provider_oauthcc/__init__.py"
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)


# The first release of a dependency that fixes a vulnerability this provider is exposed to:
# no floor may allow a version below it.
FIXED_IN = {
    # response decompression without a size limit: one gzip answer fills the triggerer's memory
    "aiohttp": ("3.13.3", "CVE-2025-69223"),
    # .netrc credentials sent to other hosts
    "requests": ("2.32.4", "CVE-2024-47081"),
}


def test_no_floor_allows_a_release_with_a_known_vulnerability() -> None:
    floors = {canonicalize_name(r.name): Version(_floor(r)) for r in DECLARED}
    too_low = {
        name: f">={floors[name]} allows versions before {fixed} ({advisory})"
        for name, (fixed, advisory) in FIXED_IN.items()
        if floors[name] < Version(fixed)
    }
    assert not too_low, too_low
