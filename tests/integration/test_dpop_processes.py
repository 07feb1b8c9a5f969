"""DPoP tokens in the shared cache, across real task processes: the key pair travels with the
token (sealed), so a cold cache costs one token request and every process proves possession
of the same key."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from devserver import DevServer
from tests.support.connections import conn_json
from tests.support.redis_server import RedisServer, redis_server, redis_url
from tests.support.task_processes import TaskResult, run_tasks

from .conftest import SECRET
from .test_shared_cache_processes import REDIS_CONN_ID, redis_conn

__all__ = ["redis_server", "redis_url"]  # fixtures

pytestmark = pytest.mark.integration

PROCESSES = 16


def dpop_tasks(
    server: DevServer, backend: str, cache_dir: Path, redis_port: int, *, secret: str = SECRET
) -> list[TaskResult]:
    extra = {"auth_url": server.token_url, "cache_backend": backend, "dpop": True}
    if backend == "file":
        extra["cache_dir"] = str(cache_dir)
    else:
        extra["cache_redis_conn_id"] = REDIS_CONN_ID
    return run_tasks(
        PROCESSES,
        "crm_api",
        conn_json(server.api_url, "app", secret, **extra),
        env={f"AIRFLOW_CONN_{REDIS_CONN_ID.upper()}": redis_conn(redis_port)},
    )


def proof_key(proof: str) -> str:
    header = proof.split(".")[0]
    return json.dumps(json.loads(base64.urlsafe_b64decode(header + "==="))["jwk"])


@pytest.mark.parametrize("backend", ["file", "redis"])
def test_cold_cache_one_token_request_and_every_proof_valid(
    server: DevServer, redis_server: RedisServer, redis_url: str, tmp_path: Path, backend: str
) -> None:
    server.require_dpop("app")
    server.demand_dpop_nonces(token=False, api=True)
    results = dpop_tasks(server, backend, tmp_path / "c", redis_server.port)

    assert [r.error for r in results if not r.ok] == []
    assert server.stats.token_requests == 1
    # Each process learns the API's nonce once; no proof is refused for anything else.
    assert set(server.api_dpop.refused) == {"use_dpop_nonce"}
    assert server.api_dpop.accepted == PROCESSES
    proofs = [c.headers["Dpop"] for c in server.stats.api_captures]
    assert len({proof_key(p) for p in proofs}) == 1  # one key pair, shared with the token
    assert len(set(proofs)) == len(proofs)
    assert all(c.headers["Authorization"].startswith("DPoP ") for c in server.stats.api_captures)
    logs = " ".join(m for r in results for _, m in r.logs)
    assert not [p for p in proofs if p in logs or p.split(".")[2] in logs]
