"""Every name the package takes from airflow_compat resolves on the installed Airflow, and the
rest of the package imports version-dependent Airflow names only through it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from airflow_provider_oauthcc import airflow_compat

PACKAGE = Path(airflow_compat.__file__).parent


def _imported_from(module: str) -> set[str]:
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module == module:
                names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("name", sorted(_imported_from("airflow_provider_oauthcc.airflow_compat")))
def test_every_name_the_package_uses_resolves(name: str) -> None:
    assert getattr(airflow_compat, name) is not None


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        _ = airflow_compat.NoSuchThing


def test_version_dependent_airflow_modules_are_imported_only_by_the_compat_module() -> None:
    # airflow.sdk is 3.x only, airflow.datasets / airflow.io 2.x only, common.compat.sdk the shim
    version_dependent = (
        "airflow.sdk",
        "airflow.datasets",
        "airflow.io",
        "airflow.models",
        "airflow.providers.common.compat.sdk",
        "airflow.utils.log",
    )
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        # auth/ is the Airflow-free core: it never imports the adapters' compat module
        # (auth/errors.py picks Airflow's exception bases itself, only if Airflow is loaded)
        if path.name == "airflow_compat.py" or path.relative_to(PACKAGE).parts[0] == "auth":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.ImportFrom)
                and node.level == 0
                and (node.module or "").startswith(version_dependent)
            ):
                offenders.append(f"{path.relative_to(PACKAGE)}: {node.module}")
    assert not offenders


def test_every_resolvable_name_is_exported() -> None:
    assert set(airflow_compat._WHERE) | {"AIRFLOW_V_3_0_PLUS"} <= set(airflow_compat.__all__)
    for name in airflow_compat.__all__:
        assert getattr(airflow_compat, name) is not None, name
