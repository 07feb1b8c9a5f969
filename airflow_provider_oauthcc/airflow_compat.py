"""Every Airflow import whose location depends on the Airflow version, in one place.

Supported: Apache Airflow 2.11, 3.0, 3.1, 3.2 and 3.3. Most names come from
``apache-airflow-providers-common-compat`` (its ``sdk`` module tries the Airflow 3 location,
then the Airflow 2 one: ``airflow.sdk.Asset`` / ``airflow.datasets.Dataset``,
``airflow.sdk.ObjectStoragePath`` / ``airflow.io.path.ObjectStoragePath``,
``airflow.sdk.log.mask_secret`` / ``airflow.utils.log.secrets_masker.mask_secret``, ...); the
few it does not cover are resolved here. The rest of the package imports these names from this
module and never checks the Airflow version itself (the OAuth core, ``auth/``, imports no
Airflow at all).

Names resolve on first use (PEP 562): importing this module imports no Airflow, so DAG files
that import the operator stay cheap to parse.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Typed as Airflow 3's; get_hook_lineage_collector resolves at run time to the shim in
    # common.compat.lineage.hook (see _WHERE).
    from airflow.providers.common.compat.connection import get_async_connection
    from airflow.providers.common.compat.sdk import (
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
        AirflowTaskTimeout,
        Asset,
        BaseHook,
        BaseOperator,
        BaseSensorOperator,
        Connection,
        Context,
        ObjectStoragePath,
        PokeReturnValue,
        Stats,
        TaskDeferred,
        conf,
        determine_kwargs,
        get_hook_lineage_collector,
        mask_secret,
    )
    from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_0_PLUS
    from airflow.triggers.base import BaseTrigger, TriggerEvent

__all__ = [
    "AIRFLOW_V_3_0_PLUS",
    "AirflowException",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "AirflowTaskTimeout",
    "Asset",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "BaseTrigger",
    "Connection",
    "Context",
    "ObjectStoragePath",
    "PokeReturnValue",
    "Stats",
    "TaskDeferred",
    "TriggerEvent",
    "amask_secret",
    "conf",
    "connection_form_style",
    "determine_kwargs",
    "get_async_connection",
    "get_hook_lineage_collector",
    "mask_secret",
    "stored_connection",
]

_COMMON_COMPAT_SDK = "airflow.providers.common.compat.sdk"

# name -> module it is taken from (the same name there)
_WHERE: dict[str, str] = {
    **dict.fromkeys(
        (
            "AirflowException",
            "AirflowFailException",
            "AirflowSensorTimeout",
            "AirflowSkipException",
            "AirflowTaskTimeout",
            # Airflow 2.x: airflow.datasets.Dataset, which is what 2.x calls an asset
            "Asset",
            "BaseHook",
            "BaseOperator",
            "BaseSensorOperator",
            "Connection",
            "Context",
            "ObjectStoragePath",
            "PokeReturnValue",
            "Stats",
            "TaskDeferred",
            "conf",
            "determine_kwargs",
            "mask_secret",
        ),
        _COMMON_COMPAT_SDK,
    ),
    # The same module on every supported version.
    "BaseTrigger": "airflow.triggers.base",
    "TriggerEvent": "airflow.triggers.base",
    # Reads the connection without blocking the event loop, Airflow 2.11 to 3.3.
    "get_async_connection": "airflow.providers.common.compat.connection",
    # Airflow 2.x's collector has add_output_dataset, not add_output_asset: the shim adds it.
    "get_hook_lineage_collector": "airflow.providers.common.compat.lineage.hook",
}


def __getattr__(name: str) -> Any:
    if name == "AIRFLOW_V_3_0_PLUS":
        from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_0_PLUS

        return AIRFLOW_V_3_0_PLUS
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def amask_secret() -> Any:
    """Airflow's masker for event loops (3.3+), which does not block on the supervisor; None
    before 3.3 (the synchronous ``mask_secret`` is used there)."""
    try:
        from airflow.sdk.log import amask_secret as found
    except ImportError:
        return None
    return found


def stored_connection(conn_id: str, team_name: str | None = None) -> Any:
    """The connection as the server's secrets backends hold it, metadata database included
    (core's model, as the API server reads it; teams from Airflow 3.3)."""
    from airflow.models.connection import Connection

    if team_name is None:
        return Connection.get_connection_from_secrets(conn_id)
    return Connection.get_connection_from_secrets(conn_id, team_name=team_name)


def connection_form_style() -> str:
    """Which connection form this Airflow builds from the hook class: ``"fab"`` (Airflow 2.x,
    Flask AppBuilder: WTForms fields with its BS3 widgets) or ``"react"`` (3.x: plain WTForms
    fields, read by ``/ui/connections/hook_meta``)."""
    return "react" if __getattr__("AIRFLOW_V_3_0_PLUS") else "fab"
