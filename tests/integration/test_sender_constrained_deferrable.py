"""Deferrable mode and the sensor with sender-constrained tokens: DPoP (the triggerer signs its
own proofs, with the key from the cache entry, and answers nonces from both servers) and
certificate-bound tokens (the triggerer presents the client certificate to the API)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
from airflow.providers.common.compat.sdk import PokeReturnValue

from airflow_provider_oauthcc.auth import dpop
from airflow_provider_oauthcc.auth.cache import PROCESS_CACHE
from airflow_provider_oauthcc.auth.dpop import DPoPKey
from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
from airflow_provider_oauthcc.pull.pagination import LinkHeaderPaginator
from airflow_provider_oauthcc.sensors.oauth_http import OAuthHttpSensor
from devserver import DevServer
from devserver.pki import make_dev_pki
from tests.support.connections import airflow_conn, conn_json
from tests.support.deferral import Deferrals, run_deferrable

from .conftest import SECRET

pytestmark = pytest.mark.integration

RECORDS = 130
MTLS_CLIENT = "etl-bound"


@pytest.fixture
def dpop_server(server: DevServer) -> Iterator[DevServer]:
    server.require_dpop("app")
    server.demand_dpop_nonces()
    server.dataset_size = RECORDS
    dpop.NONCES.clear()
    value = conn_json(server.api_url, "app", SECRET, auth_url=server.token_url, dpop=True)
    with airflow_conn("crm", value):
        yield server
    dpop.NONCES.clear()


@pytest.fixture
def mtls_server(tmp_path: Path) -> Iterator[DevServer]:
    pki = make_dev_pki(tmp_path, client_ids=[MTLS_CLIENT])
    with DevServer(tls=pki.server_tls(client_auth=True)) as srv:
        srv.add_client(MTLS_CLIENT, auth_methods=["tls_client_auth"], scope="read")
        srv.bind_to_certificate(MTLS_CLIENT)
        srv.dataset_size = RECORDS
        files = pki.clients[MTLS_CLIENT]
        extra = {
            "auth_url": srv.token_url,
            "auth_method": "tls_client_auth",
            "client_cert": str(files.cert),
            "client_cert_key": str(files.key),
            "verify": str(pki.ca_cert),
        }
        with airflow_conn("crm", conn_json(srv.api_url, MTLS_CLIENT, None, **extra)):
            yield srv


def pull() -> OAuthHttpOperator:
    return OAuthHttpOperator(
        task_id="pull",
        oauth_conn_id="crm",
        endpoint="/v1/link/items",
        data={"limit": 40},
        paginate=LinkHeaderPaginator(),
        deferrable=True,
    )


def export_ready(response: requests.Response) -> bool | PokeReturnValue:
    job = response.json()
    return job["status"] == "done" and PokeReturnValue(is_done=True, xcom_value=job["id"])


def wait_for_export(server: DevServer) -> Any:
    # Not ready at the first poke, however slow the machine: the sensor must defer.
    job = server.exports.create(ready_after=3.0)
    return OAuthHttpSensor(
        task_id="wait",
        oauth_conn_id="crm",
        endpoint=f"/v1/exports/{job.id}",
        response_check=export_ready,
        deferrable=True,
        poke_interval=0.2,
        timeout=30,
    ), job.id


def assert_every_proof_valid(server: DevServer) -> None:
    # Each server asked for its nonce once; nothing else was refused.
    assert set(server.token_dpop.refused) <= {"use_dpop_nonce"}
    assert set(server.api_dpop.refused) == {"use_dpop_nonce"}
    captures = server.stats.api_captures
    assert captures and all(c.headers["Authorization"].startswith("DPoP ") for c in captures)
    assert server.api_dpop.accepted == len([c for c in captures if c.status != 401])


def test_deferrable_pull_with_dpop_and_nonces_at_both_ends(dpop_server: DevServer) -> None:
    deferrals = Deferrals()
    records = run_deferrable(pull(), {}, deferrals)
    assert [r["id"] for r in records] == list(range(1, RECORDS + 1))
    assert deferrals.count == 1 and deferrals.events[0]["status"] == "success"
    assert dpop_server.stats.token_requests == 2  # the nonce challenge, then the token
    assert_every_proof_valid(dpop_server)


def test_deferrable_sensor_with_dpop(dpop_server: DevServer) -> None:
    task, job_id = wait_for_export(dpop_server)
    deferrals = Deferrals()
    assert run_deferrable(task, {}, deferrals) == job_id
    assert deferrals.count >= 1  # once per job state the triggerer saw change
    assert_every_proof_valid(dpop_server)


def test_deferrable_pull_and_sensor_with_a_certificate_bound_token(
    mtls_server: DevServer,
) -> None:
    records = run_deferrable(pull(), {}, Deferrals())
    assert [r["id"] for r in records] == list(range(1, RECORDS + 1))
    task, job_id = wait_for_export(mtls_server)
    assert run_deferrable(task, {}, Deferrals()) == job_id
    assert mtls_server.stats.token_requests == 1
    assert mtls_server.stats.api_requests_by_status.get(401, 0) == 0


def test_the_triggerer_recovers_from_a_token_with_the_wrong_key(dpop_server: DevServer) -> None:
    assert run_deferrable(pull(), {}, Deferrals())  # a token (and key) in the process cache
    ((key, cached),) = [(k, t) for k, t in PROCESS_CACHE._tokens.items() if t.dpop_jwk]
    PROCESS_CACHE.put(key, replace(cached, dpop_jwk=DPoPKey.generate().to_jwk()))
    dpop_server.reset()

    records = run_deferrable(pull(), {}, Deferrals())

    assert len(records) == RECORDS
    assert "DPoP key does not match the token's cnf.jkt" in dpop_server.api_dpop.refused
    assert dpop_server.stats.token_requests == 1  # the triggerer fetched a new token and key
