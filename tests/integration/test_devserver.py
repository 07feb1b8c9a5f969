"""The local authorization server + protected API (devserver), exercised over HTTP
with plain ``requests`` and authlib's client-side auth methods."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oauth2.rfc7523 import ClientSecretJWT, PrivateKeyJWT
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from devserver import DevServer
from devserver.dataset import EPOCH, STEP, format_timestamp
from devserver.keys import generate_private_key_pem

pytestmark = [
    pytest.mark.integration,
    # joserfc warns about short HMAC keys on the client side
    pytest.mark.filterwarnings("ignore:Key size should be"),
]

SECRET = "s3cret-value"
JWT_SECRET = "a-shared-secret-long-enough-for-hs256"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def client_keys() -> dict[str, tuple[str, dict[str, Any]]]:
    return {alg: generate_private_key_pem(alg) for alg in ("RS256", "ES256", "PS256")}


@pytest.fixture(scope="module")
def server(client_keys: dict[str, tuple[str, dict[str, Any]]]) -> Iterator[DevServer]:
    srv = DevServer()
    srv.add_client("basic-app", secret=SECRET, scope="read write", default_scope="read")
    srv.add_client("post-app", secret=SECRET, auth_methods=["client_secret_post"], scope="read")
    srv.add_client("hs-app", secret=JWT_SECRET, auth_methods=["client_secret_jwt"], scope="read")
    for alg, (_, jwk) in client_keys.items():
        srv.add_client(
            f"{alg.lower()}-app", public_jwk=jwk, auth_methods=["private_key_jwt"], scope="read"
        )
    with srv:
        yield srv


@pytest.fixture(autouse=True)
def clean(server: DevServer) -> Iterator[None]:
    server.reset()
    server.dataset_size = 1000
    server.expected_audience = None
    yield
    server.reset()


def fetch(server: DevServer, client_id: str = "basic-app", **form: str) -> requests.Response:
    return requests.post(
        server.token_url,
        data={"grant_type": "client_credentials", **form},
        auth=(client_id, SECRET),
        timeout=5,
    )


def access_token(server: DevServer, **form: str) -> str:
    response = fetch(server, **form)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def api_get(server: DevServer, path: str, token: str, **params: Any) -> requests.Response:
    return requests.get(
        server.api_url + path,
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )


def verified_claims(server: DevServer, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    jwks = KeySet.import_key_set(requests.get(server.jwks_url, timeout=5).json())
    decoded = jwt.decode(token, jwks)
    return dict(decoded.header), dict(decoded.claims)


# -- token endpoint --------------------------------------------------------------


def test_client_secret_basic_issues_rfc9068_jwt(server: DevServer) -> None:
    response = fetch(server, scope="read write")

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "read write"
    header, claims = verified_claims(server, body["access_token"])
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "RS256"
    assert claims["iss"] == server.issuer
    assert claims["sub"] == claims["client_id"] == "basic-app"
    assert claims["aud"] == server.api_url
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["scope"] == "read write"
    assert claims["jti"]


def test_client_secret_post(server: DevServer) -> None:
    response = requests.post(
        server.token_url,
        data={"grant_type": "client_credentials", "client_id": "post-app", "client_secret": SECRET},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    assert verified_claims(server, response.json()["access_token"])[1]["sub"] == "post-app"


def test_client_secret_jwt(server: DevServer) -> None:
    session = OAuth2Session(
        "hs-app", JWT_SECRET, token_endpoint_auth_method=ClientSecretJWT(server.token_url)
    )
    token = session.fetch_token(server.token_url, grant_type="client_credentials")
    assert verified_claims(server, token["access_token"])[1]["sub"] == "hs-app"
    form = server.stats.token_captures[-1].form
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert JWT_SECRET not in json.dumps(form)


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256"])
def test_private_key_jwt(
    server: DevServer, client_keys: dict[str, tuple[str, dict[str, Any]]], alg: str
) -> None:
    pem, jwk = client_keys[alg]
    # authlib's PrivateKeyJWT imports a PEM string as RSA, so pass EC keys as key objects.
    key = ECKey.import_key(pem) if alg == "ES256" else RSAKey.import_key(pem)
    session = OAuth2Session(
        f"{alg.lower()}-app",
        key,
        token_endpoint_auth_method=PrivateKeyJWT(
            server.token_url, alg=alg, headers={"kid": jwk["kid"]}
        ),
    )
    token = session.fetch_token(server.token_url, grant_type="client_credentials")
    assert verified_claims(server, token["access_token"])[1]["sub"] == f"{alg.lower()}-app"


def test_assertion_replay_and_wrong_key_are_rejected(
    server: DevServer, client_keys: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    auth = PrivateKeyJWT(server.token_url, claims={"jti": "fixed-jti"})
    session = OAuth2Session("rs256-app", client_keys["RS256"][0], token_endpoint_auth_method=auth)
    session.fetch_token(server.token_url, grant_type="client_credentials")
    replay = requests.post(
        server.token_url,
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": auth.sign(session.client_auth("private_key_jwt"), server.token_url),
        },
        timeout=5,
    )
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_client"

    # The PS256 client's key signing for the RS256 client: bad signature.
    wrong = OAuth2Session(
        "rs256-app",
        client_keys["PS256"][0],
        token_endpoint_auth_method=PrivateKeyJWT(server.token_url),
    )
    with pytest.raises(OAuthError, match="invalid_client"):
        wrong.fetch_token(server.token_url, grant_type="client_credentials")


@pytest.mark.parametrize(
    ("client_id", "secret"),
    [("basic-app", "wrong"), ("nobody", SECRET), ("post-app", SECRET)],
    ids=["wrong-secret", "unknown-client", "method-not-registered"],
)
def test_client_authentication_failures_are_401(
    server: DevServer, client_id: str, secret: str
) -> None:
    response = requests.post(
        server.token_url,
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        timeout=5,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert server.stats.token_requests_failed_by_client[client_id] == 1


def test_scope_rules(server: DevServer) -> None:
    refused = fetch(server, scope="read admin")
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_scope"
    assert fetch(server, scope="write").json()["scope"] == "write"
    assert fetch(server).json()["scope"] == "read"  # default_scope


def test_audience_and_resource_parameters(server: DevServer) -> None:
    by_audience = access_token(server, audience="https://api.example", resource="https://r")
    by_resource = access_token(server, resource="https://r.example")
    assert verified_claims(server, by_audience)[1]["aud"] == "https://api.example"
    assert verified_claims(server, by_resource)[1]["aud"] == "https://r.example"


def test_unsupported_grant_type(server: DevServer) -> None:
    response = requests.post(
        server.token_url, data={"grant_type": "password"}, auth=("basic-app", SECRET), timeout=5
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_client_added_after_start_gets_short_lived_token(server: DevServer) -> None:
    server.add_client("late", secret=SECRET, scope="read", token_lifetime=2)
    body = fetch(server, client_id="late").json()
    assert body["expires_in"] == 2
    server.remove_client("late")


# -- discovery ---------------------------------------------------------------------


def test_discovery_documents(server: DevServer) -> None:
    for url in (server.openid_configuration_url, server.oauth_metadata_url):
        meta = requests.get(url, timeout=5).json()
        assert meta["issuer"] == server.issuer
        assert meta["token_endpoint"] == server.token_url
        assert meta["jwks_uri"] == server.jwks_url
        assert meta["grant_types_supported"] == [
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
        ]
        assert set(meta["token_endpoint_auth_methods_supported"]) == {
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
            "private_key_jwt",
        }
    keys = requests.get(server.jwks_url, timeout=5).json()["keys"]
    assert [k["kty"] for k in keys] == ["RSA"]
    assert "d" not in keys[0]


def test_issuer_under_a_path() -> None:
    with DevServer(issuer_path="/realms/demo") as srv:
        srv.add_client("app", secret=SECRET)
        assert srv.issuer.endswith("/realms/demo")
        assert srv.token_url == f"{srv.issuer}/oauth/token"
        assert srv.oauth_metadata_url.endswith(
            "/.well-known/oauth-authorization-server/realms/demo"
        )
        for url in (srv.openid_configuration_url, srv.oauth_metadata_url):
            assert requests.get(url, timeout=5).json()["token_endpoint"] == srv.token_url
        token = access_token(srv, client_id="app")
        assert api_get(srv, "/v1/whoami", token).json()["iss"] == srv.issuer


# -- API token validation ----------------------------------------------------------


def test_api_accepts_valid_token(server: DevServer) -> None:
    token = access_token(server)
    response = api_get(server, "/v1/whoami", token)
    assert response.status_code == 200
    assert response.json()["client_id"] == "basic-app"


def _assert_invalid_token(response: requests.Response, reason: str) -> None:
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge
    assert reason in challenge


def test_api_rejects_missing_and_tampered_tokens(server: DevServer) -> None:
    missing = requests.get(server.api_url + "/v1/whoami", timeout=5)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="devserver"'

    header, payload, signature = access_token(server).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode()
    _assert_invalid_token(
        api_get(server, "/v1/whoami", f"{header}.{forged.rstrip('=')}.{signature}"), "invalid"
    )
    _assert_invalid_token(api_get(server, "/v1/whoami", "not-a-jwt"), "token")


def test_api_rejects_expired_token(server: DevServer) -> None:
    server.add_client("short", secret=SECRET, token_lifetime=2)
    token = access_token(server, client_id="short")
    assert api_get(server, "/v1/whoami", token).status_code == 200
    exp = verified_claims(server, token)[1]["exp"]
    time.sleep(max(0.0, exp - time.time()) + 0.05)
    _assert_invalid_token(api_get(server, "/v1/whoami", token), "expired")


def test_api_rejects_revoked_tokens_only(server: DevServer) -> None:
    old = access_token(server)
    assert server.revoke_all_tokens() >= 1
    new = access_token(server)
    _assert_invalid_token(api_get(server, "/v1/whoami", old), "revoked")
    assert api_get(server, "/v1/whoami", new).status_code == 200


def test_api_checks_audience_only_when_configured(server: DevServer) -> None:
    token = access_token(server, audience="https://other.example")
    assert api_get(server, "/v1/whoami", token).status_code == 200
    server.expected_audience = server.api_url
    _assert_invalid_token(api_get(server, "/v1/whoami", token), "audience")
    assert api_get(server, "/v1/whoami", access_token(server)).status_code == 200


# -- pagination and filters ----------------------------------------------------------


def _walk(
    server: DevServer, style: str, token: str, page_size: int, **params: Any
) -> tuple[list[int], int]:
    """Follow one pagination style to the end; return (ids, number of requests)."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    base = f"{server.api_url}/v1/{style}/items"
    ids: list[int] = []
    calls = 0

    def get(url: str, query: dict[str, Any] | None = None) -> requests.Response:
        nonlocal calls
        calls += 1
        response = session.get(url, params=query, timeout=5)
        assert response.status_code == 200, response.text
        return response

    if style == "link":
        response = get(base, {"limit": page_size, **params})
        while True:
            ids += [r["id"] for r in response.json()]
            if "next" not in response.links:
                break
            response = get(response.links["next"]["url"])
    elif style == "next":
        body = get(base, {"limit": page_size, **params}).json()
        ids += [r["id"] for r in body["data"]]
        while body["next"]:
            body = get(body["next"]).json()
            ids += [r["id"] for r in body["data"]]
    elif style == "cursor":
        query = {"limit": page_size, **params}
        while True:
            body = get(base, query).json()
            ids += [r["id"] for r in body["items"]]
            if not body["next_cursor"]:
                break
            query = {**query, "cursor": body["next_cursor"]}
    elif style == "page":
        page = 1
        while True:
            body = get(base, {"page": page, "per_page": page_size, **params}).json()
            if not body["data"]:
                break
            ids += [r["id"] for r in body["data"]]
            page += 1
    else:
        offset = 0
        while True:
            body = get(base, {"offset": offset, "limit": page_size, **params}).json()
            ids += [r["id"] for r in body["results"]]
            offset += page_size
            if offset >= body["total"]:
                break
    return ids, calls


STYLES = ["link", "next", "cursor", "page", "offset"]


@pytest.mark.parametrize("style", STYLES)
def test_each_pagination_style_walks_whole_dataset_once(server: DevServer, style: str) -> None:
    server.dataset_size = 1234
    ids, calls = _walk(server, style, access_token(server), page_size=100)
    assert ids == list(range(1, 1235))
    assert calls == 13 + (style == "page")  # the page style stops on an empty page
    assert server.stats.api_requests == calls


@pytest.mark.parametrize("style", STYLES)
def test_filters_select_updated_at_window(server: DevServer, style: str) -> None:
    since, before = EPOCH + 10 * STEP, EPOCH + 55 * STEP
    ids, _ = _walk(
        server,
        style,
        access_token(server),
        page_size=7,
        updated_since=since.isoformat(),
        updated_before=format_timestamp(before),
    )
    assert ids == list(range(11, 56))


def test_record_shape_and_padding(server: DevServer) -> None:
    token = access_token(server)
    body = api_get(server, "/v1/offset/items", token, offset=4, limit=2, pad=5000).json()
    first = body["results"][0]
    assert first == {
        "id": 5,
        "name": "item-5",
        "updated_at": format_timestamp(EPOCH + 4 * STEP),
        "pad": "x" * 5000,
    }
    assert body["total"] == 1000
    past_end = api_get(server, "/v1/page/items", token, page=99, per_page=100).json()
    assert past_end == {"data": [], "page": 99, "total_pages": 10}
    bad = api_get(server, "/v1/link/items", token, updated_since="yesterday")
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_request"


def test_echo_returns_posted_body(server: DevServer) -> None:
    headers = {"Authorization": f"Bearer {access_token(server)}"}
    as_json = requests.post(
        server.api_url + "/v1/echo", json={"a": [1, 2]}, headers=headers, timeout=5
    ).json()
    assert as_json["json"] == {"a": [1, 2]}
    as_form = requests.post(
        server.api_url + "/v1/echo", data={"k": "v"}, headers=headers, timeout=5
    ).json()
    assert as_form["form"] == {"k": ["v"]}


def test_connections_are_kept_alive(server: DevServer) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {access_token(server)}"
    for _ in range(5):
        assert session.get(server.api_url + "/v1/whoami", timeout=5).status_code == 200
    ports = {c.remote_port for c in server.stats.api_captures}
    assert len(ports) == 1
    assert None not in ports


# -- counters, capture, faults ------------------------------------------------------


def test_stats_and_captures_prove_secret_never_reaches_api(server: DevServer) -> None:
    token = access_token(server)
    api_get(server, "/v1/link/items", token, limit=5)
    stats = server.stats
    assert stats.token_requests == 1
    assert stats.token_requests_by_client["basic-app"] == 1
    assert stats.api_requests == 1
    (token_request,) = stats.token_captures
    assert token_request.form == {"grant_type": "client_credentials"}
    assert token_request.headers["Authorization"].startswith("Basic ")
    (api_request,) = stats.api_captures
    assert api_request.path == "/v1/link/items"
    assert api_request.query_string == "limit=5"
    assert api_request.headers["Authorization"] == f"Bearer {token}"
    assert not any(c.contains(SECRET) for c in stats.api_captures)


def _statuses(send: Callable[[], requests.Response], n: int) -> list[int]:
    return [send().status_code for _ in range(n)]


def test_api_faults_fire_as_configured(server: DevServer) -> None:
    token = access_token(server)

    def whoami() -> requests.Response:
        return api_get(server, "/v1/whoami", token)

    server.api_faults.add(status=503, times=2)
    assert _statuses(whoami, 3) == [503, 503, 200]

    server.api_faults.add(status=500, every=3)
    assert _statuses(whoami, 6) == [200, 200, 500, 200, 200, 500]
    server.api_faults.clear()

    server.api_faults.add(status=429, retry_after=1)
    limited = whoami()
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "1")

    server.api_faults.add(status=401)
    rejected = whoami()
    assert rejected.status_code == 401
    assert 'error="invalid_token"' in rejected.headers["WWW-Authenticate"]

    server.api_faults.add(delay=0.3)
    started = time.monotonic()
    assert whoami().status_code == 200
    assert time.monotonic() - started >= 0.3
    assert server.api_faults.pending == []


def test_token_faults_fire_and_count(server: DevServer) -> None:
    server.token_faults.add(status=503, times=1, retry_after=2)
    failed = fetch(server)
    assert failed.status_code == 503
    assert failed.json()["error"] == "temporarily_unavailable"
    assert failed.headers["Retry-After"] == "2"
    assert fetch(server).status_code == 200
    assert server.stats.token_requests_ok_by_client["basic-app"] == 1
    assert server.stats.token_requests_failed_by_client["basic-app"] == 1


def test_control_endpoints(server: DevServer) -> None:
    control = server.control_url
    response = requests.post(
        f"{control}/faults", json={"target": "token", "status": 500, "times": 1}, timeout=5
    )
    assert response.status_code == 201
    assert fetch(server).status_code == 500
    token = access_token(server)

    assert requests.put(f"{control}/dataset", json={"size": 42}, timeout=5).ok
    assert api_get(server, "/v1/offset/items", token).json()["total"] == 42

    stats = requests.get(f"{control}/stats", timeout=5).json()
    assert stats["token_requests"] == 2
    assert stats["token_requests_failed"] == 1
    assert stats["api_requests"] == 1  # control calls are not counted

    assert requests.post(f"{control}/revoke", timeout=5).json()["revoked"] >= 1
    assert api_get(server, "/v1/whoami", token).status_code == 401

    requests.post(f"{control}/faults", json={"target": "api", "status": 503, "every": 1}, timeout=5)
    assert requests.delete(f"{control}/faults", timeout=5).status_code == 204
    assert requests.post(f"{control}/reset", timeout=5).status_code == 204
    assert requests.get(f"{control}/stats", timeout=5).json()["api_requests"] == 0
    bad = requests.post(f"{control}/faults", json={"target": "api", "status": 200}, timeout=5)
    assert bad.status_code == 400


# -- process mode ------------------------------------------------------------------


def test_process_mode_writes_state_file_and_stops_on_sigterm(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    clients_file = tmp_path / "clients.json"
    clients_file.write_text(
        json.dumps(
            [{"client_id": "etl", "secret": "etl-secret", "auth_methods": ["client_secret_post"]}]
        )
    )
    env = {**os.environ, "DEVSERVER_DEMO_SECRET": "demo-secret-from-env"}
    command = [
        "-m",
        "devserver",
        "--state-file",
        str(state_file),
        "--clients-file",
        str(clients_file),
    ]
    proc = subprocess.Popen(
        [sys.executable, *command],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while not state_file.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "state file not written"
            time.sleep(0.05)
        state = json.loads(state_file.read_text())
        assert state["pid"] == proc.pid
        token = requests.post(
            state["token_url"],
            data={"grant_type": "client_credentials"},
            auth=("demo-client", "demo-secret-from-env"),
            timeout=5,
        ).json()
        assert token["scope"] == "read"
        whoami = requests.get(
            f"{state['api_url']}/v1/whoami",
            headers={"Authorization": f"Bearer {token['access_token']}"},
            timeout=5,
        )
        assert whoami.json()["iss"] == state["issuer"]
        etl = requests.post(
            state["token_url"],
            data={
                "grant_type": "client_credentials",
                "client_id": "etl",
                "client_secret": "etl-secret",
            },
            timeout=5,
        )
        assert etl.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert not state_file.exists()
    assert b"demo-secret-from-env" not in stderr
