"""Airflow connections for tests, as users write them: AIRFLOW_CONN_<ID> JSON."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any


def conn_json(api_url: str, client_id: str, secret: str | None, **extra: Any) -> str:
    return json.dumps(
        {
            "conn_type": "oauth2_client_credentials",
            "host": api_url,
            "login": client_id,
            "password": secret,
            "extra": extra,
        }
    )


@contextmanager
def airflow_conn(conn_id: str, value: str) -> Iterator[str]:
    name = f"AIRFLOW_CONN_{conn_id.upper()}"
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield conn_id
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def env_with(conns: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update({f"AIRFLOW_CONN_{k.upper()}": v for k, v in conns.items()})
    return env
