"""The JWT-bearer authorization grant (RFC 7523 §2.1) against the real authorization server, as
Salesforce and Google server-to-server flows use it: ``assertion=`` a JWT signed with the
connection's private key, its iss / sub / aud / exp / jti configurable, no client secret."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from airflow_provider_oauthcc.auth.errors import OAuthCCConfigError, TokenRequestError
from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook
from devserver import DevServer
from devserver.clients import build_jwt_bearer_client
from devserver.keys import generate_private_key_pem
from tests.support.connections import airflow_conn, conn_json

pytestmark = pytest.mark.integration

GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
USER = "etl@example.com"
PEM, JWK = generate_private_key_pem("RS256")


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    with DevServer() as srv:
        srv.clients.add(
            build_jwt_bearer_client("sf-app", public_jwk=JWK, scope="api", subjects=[USER])
        )
        yield srv


@pytest.fixture(autouse=True)
def _reset(server: DevServer) -> None:
    server.reset()


def hook(server: DevServer, **extra: Any) -> OAuthCCHook:
    extra = {
        "auth_url": server.token_url,
        "grant_type": "jwt_bearer",
        "private_key": PEM,
        "assertion_subject": USER,
        **extra,
    }
    with airflow_conn("sf", conn_json(server.api_url, "sf-app", None, **extra)):
        made = OAuthCCHook(oauth_conn_id="sf")
        made.oauth_config  # noqa: B018
    return made


def claims_of(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=="))
    return decoded


def test_the_grant_gets_a_token_for_the_subject(server: DevServer) -> None:
    whoami = hook(server, scope="api").run("/v1/whoami").json()
    assert whoami["sub"] == USER and whoami["client_id"] == "sf-app" and whoami["scope"] == "api"
    sent = server.stats.token_captures[0]
    assert sent.form["grant_type"] == GRANT
    assert not {"client_assertion", "client_secret"} & set(sent.form)
    assert "Authorization" not in sent.headers
    claims = claims_of(sent.form["assertion"])
    assert claims["iss"] == "sf-app" and claims["sub"] == USER
    assert claims["aud"] == server.token_url
    assert claims["exp"] - claims["iat"] == 300 and claims["jti"]


def test_the_claims_are_configurable(server: DevServer) -> None:
    api = hook(server, assertion_audience=server.issuer, assertion_lifetime=120)
    assert api.get_token()
    claims = claims_of(server.stats.token_captures[0].form["assertion"])
    assert claims["aud"] == server.issuer and claims["exp"] - claims["iat"] == 120


def test_each_request_signs_a_new_assertion_and_a_replay_is_refused(server: DevServer) -> None:
    api = hook(server)
    assert api.get_token()
    server.revoke_all_tokens()
    assert api.run("/v1/whoami").status_code == 200  # 401, then a new token
    first, second = (claims_of(c.form["assertion"]) for c in server.stats.token_captures)
    assert first["jti"] != second["jti"]
    replay = requests.post(server.token_url, data=server.stats.token_captures[0].form, timeout=10)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"


def test_a_subject_the_client_may_not_act_for_is_refused(server: DevServer) -> None:
    with pytest.raises(TokenRequestError) as err:
        hook(server, assertion_subject="root@example.com").get_token()
    assert err.value.error == "invalid_grant"
    sent = server.stats.token_captures[0].form["assertion"]
    assert sent not in str(err.value) and sent.split(".")[2] not in str(err.value)


def test_a_subject_is_part_of_the_tokens_identity(server: DevServer) -> None:
    assert (
        hook(server).oauth_config.cache_key
        != hook(server, assertion_subject="other@example.com").oauth_config.cache_key
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"auth_method": "client_secret_basic"}, "signs its assertion with the connection's"),
        ({"private_key": None}, "private_key_jwt needs a PEM private key"),
        ({"grant_type": "password"}, "unknown grant 'password'"),
        ({"assertion_lifetime": 0}, "assertion_lifetime"),
    ],
)
def test_configuration_errors(server: DevServer, extra: dict[str, Any], message: str) -> None:
    with pytest.raises(OAuthCCConfigError, match=message):
        hook(server, **extra)
