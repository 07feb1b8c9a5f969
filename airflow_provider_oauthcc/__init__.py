"""Apache Airflow provider for OAuth 2.0 client-credentials protected HTTP APIs."""

from __future__ import annotations

__version__ = "0.2.0"

MIN_AIRFLOW_VERSION = "2.11.0"


def _installed_airflow_version() -> str | None:
    """Airflow's version without importing Airflow (slow, and the OAuth core works without it)."""
    import sys

    loaded = getattr(sys.modules.get("airflow"), "__version__", None)
    if isinstance(loaded, str):
        return loaded
    from importlib.metadata import PackageNotFoundError, version

    for distribution in ("apache-airflow-core", "apache-airflow"):
        try:
            return version(distribution)
        except PackageNotFoundError:
            continue
    return None


def _release(version: str) -> tuple[int, ...]:
    """(3, 1, 0) from "3.1.0", "3.1.0rc1", "3.1.0.dev0": pre-releases count as their release."""
    import re

    match = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", version)
    return tuple(int(part or 0) for part in match.groups()) if match else (0,)


def _check_airflow_version() -> None:
    """Refuse an Airflow older than the minimum with a clear message, as official providers do."""
    found = _installed_airflow_version()
    if found is not None and _release(found) < _release(MIN_AIRFLOW_VERSION):
        raise RuntimeError(
            f"airflow-provider-oauthcc {__version__} needs Apache Airflow {MIN_AIRFLOW_VERSION} "
            f"or newer, and this is Airflow {found}: upgrade Airflow, or pin an older "
            "airflow-provider-oauthcc."
        )


_check_airflow_version()
