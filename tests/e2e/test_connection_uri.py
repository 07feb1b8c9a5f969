"""The connection's URI form through the real CLI: `airflow connections add --conn-uri`, then
`connections export` and `connections import` keep every field, and the hook reads it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from devserver import DevServer

pytestmark = pytest.mark.e2e

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
SECRET = "s3cret/Value:9f8e?7d"  # URI-reserved characters: they must survive quoting

# Every extra the connection has, with the types a user writes (strings, numbers, booleans,
# a list, JSON objects). Through `__extra__` they keep their types.
EVERY_EXTRA: dict[str, Any] = {
    "auth_url": "https://tenant.eu.auth0.com/oauth/token",
    "issuer": "https://tenant.eu.auth0.com/",
    "auth_method": "private_key_jwt",
    "scope": "read:orders write:orders",
    "audience": "https://api.example.com/",
    "resource": ["https://api.example.com/", "https://files.example.com/"],
    "private_key": "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
    "private_key_passphrase": "pass phrase",
    "key_id": "key-2024",
    "signing_algorithm": "EdDSA",
    "client_cert": "/etc/airflow/client.pem",
    "client_cert_key": "/etc/airflow/client.key",
    "request_params": {"organization": "acme"},
    "headers": {"X-Tenant": "acme"},
    "verify": "/etc/ssl/certs/ca-certificates.crt",
    "timeout": 20,
    "proxies": {"https": "http://proxy.internal:3128"},
    "allow_insecure_http": False,
    "default_expires_in": 600,
    "cache_backend": "redis",
    "cache_dir": "/var/cache/oauthcc",
    "cache_redis_conn_id": "redis_tokens",
}
EVERY_FIELD = {
    "conn_type": "oauth2_client_credentials",
    "description": None,
    "host": "api.example.com",
    "login": "my-client@example.com",
    "password": SECRET,
    "port": 8443,
    "schema": "https",
    "extra": EVERY_EXTRA,
}
URI = (
    f"oauth2-client-credentials://{quote('my-client@example.com', safe='')}:"
    f"{quote(SECRET, safe='')}@api.example.com:8443/https?"
    + urlencode({"__extra__": json.dumps(EVERY_EXTRA)})
)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("airflow-home")
    migrate = airflow("db", "migrate", home=home, timeout=300)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    return home


def airflow(
    *args: str, home: Path, timeout: int = 180, **conns: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__TEST_CONNECTION="Enabled")
    env.update({f"AIRFLOW_CONN_{k.upper()}": v for k, v in conns.items()})
    return subprocess.run(
        [AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def exported(home: Path, conn_id: str, path: Path) -> dict[str, Any]:
    ok(airflow("connections", "export", str(path), "--file-format", "json", home=home))
    stored: dict[str, Any] = json.loads(path.read_text())[conn_id]
    if isinstance(stored.get("extra"), str):
        stored["extra"] = json.loads(stored["extra"])
    return stored


def test_add_by_uri_then_export_and_import_keep_every_field(home: Path, tmp_path: Path) -> None:
    ok(airflow("connections", "add", "crm_uri", "--conn-uri", URI, home=home))
    assert exported(home, "crm_uri", tmp_path / "first.json") == EVERY_FIELD
    # The URI serialization too: what `export --serialization-format uri` writes must import.
    env_file = tmp_path / "connections.env"
    ok(
        airflow(
            "connections", "export", str(env_file), "--file-format", "env",
            "--serialization-format", "uri", home=home,
        )
    )  # fmt: skip
    line = next(x for x in env_file.read_text().splitlines() if x.startswith("crm_uri="))
    assert line.split("=", 1)[1].startswith("oauth2-client-credentials://")

    for source in (tmp_path / "first.json", env_file):
        ok(airflow("connections", "delete", "crm_uri", home=home))
        ok(airflow("connections", "import", str(source), home=home))
        assert exported(home, "crm_uri", tmp_path / "again.json") == EVERY_FIELD, source.name


def test_plain_query_extras_and_the_hook_reads_the_uri(home: Path) -> None:
    """The short form users type, extras as query parameters, as AIRFLOW_CONN_<ID>: the hook
    gets a token with it. (Airflow 3.1.0's `connections test` fails for any connection stored
    in its database, HttpHook's included: "cannot import name 'SUPERVISOR_COMMS'"; the
    environment variable is read on every version.)"""
    with DevServer() as server:
        server.add_client("app", secret=SECRET, scope="read")
        api = server.api_url.split("://", 1)[1].rstrip("/")
        host, port = api.rsplit(":", 1)
        uri = (
            f"oauth2-client-credentials://app:{quote(SECRET, safe='')}@{host}:{port}/http?"
            + urlencode({"auth_url": server.token_url, "scope": "read"})
        )
        result = airflow("connections", "test", "crm_short", home=home, crm_short=uri)
        assert "Connection success!" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
        assert server.stats.token_requests_ok == 1
        for stream in (result.stdout, result.stderr):
            assert SECRET not in stream
