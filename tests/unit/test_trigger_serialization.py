"""What the metadata database stores for a deferred task: the connection ID and the request."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest

from airflow_provider_oauthcc.triggers.oauth_http import OAuthHttpSensorTrigger, OAuthHttpTrigger


def rebuilt(trigger: Any) -> Any:
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))


def test_trigger_round_trip() -> None:
    trigger = OAuthHttpTrigger(
        oauth_conn_id="crm_api",
        endpoint="/v2/orders",
        method="get",
        data={"updated_since": "2024-01-01T00:00:00+00:00", "tags": ["a", "b"]},
        headers={"Accept": "application/json"},
        extra_options={"timeout": [3, 30], "check_response": True},
        json=None,
        retries=3,
        retry_max_wait=10.0,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_oauthcc.triggers.oauth_http.OAuthHttpTrigger"
    assert kwargs == {
        "oauth_conn_id": "crm_api",
        "endpoint": "/v2/orders",
        "method": "GET",
        "data": {"updated_since": "2024-01-01T00:00:00+00:00", "tags": ["a", "b"]},
        "headers": {"Accept": "application/json"},
        "extra_options": {"timeout": [3, 30], "check_response": True},
        "json": None,
        "retries": 3,
        "retry_max_wait": 10.0,
        "oauth_params": {},
    }
    assert rebuilt(trigger).serialize() == (classpath, kwargs)


@pytest.mark.parametrize("seen", [None, "ab" * 32])
def test_sensor_trigger_round_trip(seen: str | None) -> None:
    trigger = OAuthHttpSensorTrigger(
        oauth_conn_id="crm_api",
        endpoint="/v1/exports/exp-1",
        poke_interval=30.0,
        response_error_codes_allowlist=["404", "409"],
        seen_digest=seen,
        deadline=1_900_000_000.5,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath.endswith(".OAuthHttpSensorTrigger")
    assert kwargs["poke_interval"] == 30.0
    assert kwargs["response_error_codes_allowlist"] == ["404", "409"]
    assert kwargs["seen_digest"] == seen and kwargs["deadline"] == 1_900_000_000.5
    assert rebuilt(trigger).serialize() == (classpath, kwargs)


def test_sensor_trigger_defaults_to_404_as_not_yet() -> None:
    assert OAuthHttpSensorTrigger("crm_api").response_error_codes_allowlist == ["404"]


def test_nothing_but_the_request_is_kept() -> None:
    """No field for a token, a secret or a client: those are read in the triggerer."""
    _, kwargs = OAuthHttpTrigger("crm_api", "/v1/x").serialize()
    assert not {k for k in kwargs if any(w in k for w in ("token", "secret", "password", "key"))}
