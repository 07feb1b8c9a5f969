"""Provider metadata, read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    from airflow_provider_oauthcc import __version__
    from airflow_provider_oauthcc.connection_fields import CONN_FIELDS, UI_FIELD_BEHAVIOUR

    return {
        "package-name": "airflow-provider-oauthcc",
        "name": "OAuth 2.0 Client Credentials",
        "description": "Call OAuth 2.0 client-credentials protected HTTP APIs from Airflow.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "OAuth 2.0 Client Credentials",
                "external-doc-url": "https://www.rfc-editor.org/rfc/rfc6749#section-4.4",
                "tags": ["protocol"],
            }
        ],
        "hooks": [
            {
                "integration-name": "OAuth 2.0 Client Credentials",
                "python-modules": ["airflow_provider_oauthcc.hooks.oauth_cc"],
            }
        ],
        "operators": [
            {
                "integration-name": "OAuth 2.0 Client Credentials",
                "python-modules": ["airflow_provider_oauthcc.operators.oauth_http"],
            }
        ],
        "sensors": [
            {
                "integration-name": "OAuth 2.0 Client Credentials",
                "python-modules": ["airflow_provider_oauthcc.sensors.oauth_http"],
            }
        ],
        "triggers": [
            {
                "integration-name": "OAuth 2.0 Client Credentials",
                "python-modules": ["airflow_provider_oauthcc.triggers.oauth_http"],
            }
        ],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_oauthcc.hooks.oauth_cc.OAuthCCHook",
                "hook-name": "OAuth2 Client Credentials",
                "connection-type": "oauth2_client_credentials",
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
                "conn-fields": CONN_FIELDS,
            }
        ],
        # Airflow's configuration ([oauthcc] in airflow.cfg, AIRFLOW__OAUTHCC__* variables);
        # `airflow config list` shows it.
        "config": {
            "oauthcc": {
                "description": "Settings of the OAuth 2.0 client-credentials provider.\n",
                "options": {
                    "token_cache_dir": {
                        "description": "The folder of the file token cache "
                        "(cache_backend=file) on each worker, for connections whose cache_dir "
                        "extra is empty: an absolute path on a local disk, created 0700.\n",
                        "version_added": "0.2.0",
                        "type": "string",
                        "example": "/var/cache/airflow/oauthcc-token-cache",
                        "default": "{AIRFLOW_HOME}/oauthcc-token-cache",
                    },
                },
            },
        },
    }
