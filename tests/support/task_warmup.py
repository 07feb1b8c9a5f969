"""Preloaded by the task-process forkserver: read one connection before forking, as a worker
has done long before it runs a task. Outside a real task runner, Airflow 3.1 reads a connection
through its ORM model and configures every SQLAlchemy mapper on first use (~1 s per process)."""

from __future__ import annotations

import json
import os

from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook

_NAME = "AIRFLOW_CONN_OAUTHCC_FORKSERVER_WARM_UP"
os.environ[_NAME] = json.dumps({"conn_type": "http", "host": "localhost"})
try:
    OAuthCCHook.get_connection("oauthcc_forkserver_warm_up")
finally:
    del os.environ[_NAME]
