"""Other names the operator and the sensor accept for their arguments, so that code written for
HttpOperator / HttpSensor, or for an earlier version of this provider, keeps working."""

from __future__ import annotations

from typing import Any

DEFAULT_CONN_ID = "oauth_cc_default"


def conn_id_from_alias(oauth_conn_id: str | None, http_conn_id: str | None) -> str:
    """``http_conn_id`` is another name for ``oauth_conn_id``: HttpOperator code keeps working."""
    if oauth_conn_id is not None and http_conn_id is not None and oauth_conn_id != http_conn_id:
        raise TypeError(
            f"give the connection once: oauth_conn_id={oauth_conn_id!r} and "
            f"http_conn_id={http_conn_id!r} differ (http_conn_id is another name for "
            "oauth_conn_id)"
        )
    return oauth_conn_id or http_conn_id or DEFAULT_CONN_ID


def output_path_from_alias(output_path: Any, kwargs: dict[str, Any]) -> Any:
    """``output`` is the former name of ``output_path`` (the argument now has the name of the
    template field it fills, as Airflow's template fields do); popped from ``kwargs``."""
    if "output" not in kwargs:
        return output_path
    import warnings

    from airflow.exceptions import AirflowProviderDeprecationWarning

    output = kwargs.pop("output")
    if output_path is not None:
        raise TypeError("give output_path only (output is its former name)")
    warnings.warn(
        "OAuthHttpOperator's 'output' argument is now called 'output_path'",
        AirflowProviderDeprecationWarning,
        stacklevel=4,
    )
    return output
