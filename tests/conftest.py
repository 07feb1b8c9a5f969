"""Import Airflow before any module of the provider, as Airflow's own processes do.

``auth/errors.py`` bases the exception family on Airflow's exceptions only when Airflow is
already imported (importing it from there would re-enter the half-imported package through
Airflow's provider discovery). Without this, a test that imports the core first would see
plain exceptions where every Airflow process sees ``AirflowException`` subclasses.
"""

from __future__ import annotations

import importlib.util

if importlib.util.find_spec("airflow") is not None:
    import airflow  # noqa: F401
