"""The authorization server: client-credentials grant, discovery and JWKS.

Built on authlib's Flask ``AuthorizationServer``; this module only supplies the
client store, the five client-authentication methods and the JWT token generator.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidGrantError, OAuth2Error
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion, JWTBearerGrant
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from flask import Blueprint, Flask, Request, Response, g, request
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from devserver.clients import (
    AUTH_METHODS,
    FEDERATED_METHOD,
    GRANT_TYPE,
    JWT_BEARER_GRANT,
    Client,
    ClientRegistry,
)
from devserver.dpop import NONCE_ERROR as DPOP_NONCE_ERROR
from devserver.dpop import DPoPError, DPoPVerifier
from devserver.faults import FaultSet
from devserver.federation import authenticate_federated_client
from devserver.instrument import capture, instrument, json_response
from devserver.keys import PRIVATE_KEY_JWT_ALGORITHMS, SECRET_JWT_ALGORITHMS, SigningKey
from devserver.mtls import (
    SELF_SIGNED_METHOD,
    CertificateBinding,
    authenticate_tls_client,
    certificate_confirmation,
    self_signed_authenticator,
)
from devserver.stats import Stats
from devserver.tokens import TokenRegistry, unverified_claims

ASSERTION_TYPE = JWTBearerClientAssertion.CLIENT_ASSERTION_TYPE
TOKEN_PATH = "/oauth/token"
JWKS_PATH = "/.well-known/jwks.json"


@dataclass(frozen=True)
class AuthServerUrls:
    issuer: str
    token_url: str
    jwks_url: str
    default_audience: str  # "aud" when the request names no audience/resource


class _ClientAssertion(JWTBearerClientAssertion):
    """RFC 7523 client assertion for one method. The assertion's ``alg`` picks the
    method (HS* -> client_secret_jwt, else private_key_jwt), so each method only
    handles assertions meant for it and the other method is still tried."""

    ALGORITHMS: tuple[str, ...] = ()

    def __init__(self, audiences: list[str]) -> None:
        super().__init__(validate_jti=True)
        self._audiences = audiences
        self._seen_jti: dict[str, float] = {}
        self._jti_lock = threading.Lock()

    def __call__(self, query_client: Any, oauth_request: OAuth2Request) -> Client | None:
        form = oauth_request.form
        assertion = form.get("client_assertion")
        if form.get("client_assertion_type") != ASSERTION_TYPE or not assertion:
            return None
        try:
            alg = jws.extract_compact(assertion.encode()).headers().get("alg")
        except JoseError as exc:
            raise InvalidClientError(description="Invalid JWT assertion.") from exc
        if alg not in self.ALGORITHMS:
            return None
        client: Client | None = super().__call__(query_client, oauth_request)
        return client

    def get_audiences(self) -> list[str]:
        return [*self._audiences, request.base_url]

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> dict[str, Any]:
        # authlib decodes with joserfc's default algorithms, which exclude PS256.
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=list(self.ALGORITHMS))
        except JoseError as exc:
            raise InvalidClientError(description=exc.description) from exc
        self.verify_claims(token.claims)
        return dict(token.claims)

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        key = f"{claims['sub']}:{jti}"
        now = time.time()
        with self._jti_lock:
            if len(self._seen_jti) > 10_000:
                self._seen_jti = {k: exp for k, exp in self._seen_jti.items() if exp > now}
            if key in self._seen_jti:
                return False
            self._seen_jti[key] = float(claims.get("exp", now + 3600))
            return True


class ClientSecretJWTAssertion(_ClientAssertion):
    CLIENT_AUTH_METHOD = "client_secret_jwt"
    ALGORITHMS = SECRET_JWT_ALGORITHMS

    def resolve_client_public_key(self, client: Client) -> Any:
        return client.secret_key


class PrivateKeyJWTAssertion(_ClientAssertion):
    CLIENT_AUTH_METHOD = "private_key_jwt"
    ALGORITHMS = PRIVATE_KEY_JWT_ALGORITHMS

    def resolve_client_public_key(self, client: Client) -> Any:
        return client.public_key


class ClientCredentials(ClientCredentialsGrant):
    # The federated method first: it passes (None) unless the client is a federated one, where
    # private_key_jwt would refuse an assertion whose "sub" is not a client.
    TOKEN_ENDPOINT_AUTH_METHODS = [FEDERATED_METHOD, *AUTH_METHODS]


class _Subject:
    """The resource owner a JWT-bearer assertion acts for (its ``sub``)."""

    def __init__(self, subject: str) -> None:
        self.subject = subject

    def get_user_id(self) -> str:
        return self.subject


class JWTBearer(JWTBearerGrant):
    """RFC 7523 §2.1: ``iss`` names a client registered for the grant, the assertion is signed
    with its key, ``aud`` is the token endpoint or the issuer, ``jti`` is never replayed."""

    AUDIENCES: tuple[str, ...] = ()
    _seen_jti: dict[str, float] = {}
    _jti_lock = threading.Lock()

    def resolve_issuer_client(self, issuer: str) -> Client | None:
        client = self.server.query_client(issuer)
        return client if isinstance(client, Client) and client.public_key is not None else None

    def resolve_client_public_key(self, client: Client) -> Any:
        return client.public_key

    def get_audiences(self) -> list[str]:
        return list(self.AUDIENCES)

    def verify_claims(self, claims: Any) -> None:
        super().verify_claims(claims)
        jti, exp = claims.get("jti"), float(claims.get("exp", 0))
        if not isinstance(jti, str) or not jti:
            raise InvalidGrantError(description="Missing claim: 'jti'")
        key, now = f"{claims.get('iss')}:{jti}", time.time()
        with self._jti_lock:
            for seen, until in list(self._seen_jti.items()):
                if until < now:
                    del self._seen_jti[seen]
            if key in self._seen_jti:
                raise InvalidGrantError(description="The assertion was used before (jti).")
            self._seen_jti[key] = exp

    def authenticate_user(self, subject: str) -> _Subject | None:
        client: Client = self.request.client
        allowed = client.jwt_bearer_subjects
        return _Subject(subject) if not allowed or subject in allowed else None

    def has_granted_permission(self, client: Client, user: _Subject) -> bool:
        return True


def jwt_bearer_grant(audiences: list[str]) -> type[JWTBearer]:
    """The grant class for one server (authlib builds a grant per request from its class)."""
    return type(
        "JWTBearerForServer", (JWTBearer,), {"AUDIENCES": tuple(audiences), "_seen_jti": {}}
    )


class AccessTokenGenerator(JWTBearerTokenGenerator):
    """RFC 9068 JWT access tokens. ``aud`` is the ``audience`` parameter (Auth0
    style), else the ``resource`` parameter(s) (RFC 8707), else the API URL."""

    def __init__(self, urls: AuthServerUrls, key: SigningKey) -> None:
        super().__init__(
            issuer=urls.issuer,
            alg=key.alg,
            expires_generator=lambda client, grant_type: client.token_lifetime,
        )
        self._key_set: KeySet = key.signing_set
        self._default_audience = urls.default_audience

    def get_jwks(self) -> KeySet:
        return self._key_set

    def get_extra_claims(
        self, client: Client, grant_type: str, user: Any, scope: str
    ) -> dict[str, Any]:
        cnf = sender_confirmation()
        return {"cnf": cnf} if cnf else {}

    def generate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        token: dict[str, Any] = super().generate(*args, **kwargs)
        if "jkt" in sender_confirmation():
            token["token_type"] = "DPoP"
        return token

    def get_audiences(self, client: Client, user: Any, scope: str) -> str | list[str]:
        if audience := request.form.get("audience"):
            return audience
        resources = request.form.getlist("resource")
        if resources:
            return resources[0] if len(resources) == 1 else resources
        return self._default_audience


class DevAuthorizationServer(AuthorizationServer):
    def handle_error_response(self, request: OAuth2Request, error: OAuth2Error) -> Response:
        # RFC 6749 5.2 allows 400 for invalid_client without an Authorization header;
        # answer 401 + WWW-Authenticate consistently, as most providers do.
        if error.error == "invalid_client":
            error.status_code = 401
            if str(error.description).startswith("The client cannot authenticate with methods"):
                error.description = (
                    "Client authentication failed: unknown client, wrong credentials,"
                    " or a method not registered for this client."
                )
        response: Response = super().handle_error_response(request, error)
        return response


def sender_confirmation() -> dict[str, str]:
    """The ``cnf`` claim of the token being issued: the DPoP key's thumbprint (RFC 9449 §6)
    and the TLS client certificate's (RFC 8705 §3), as checked for this request."""
    return dict(getattr(g, "cnf", {}))


def check_dpop(dpop: DPoPVerifier, clients: ClientRegistry) -> Response | None:
    """Verifies the token request's proof, if any or if the client must send one; an error
    answer when it is wrong (RFC 9449 §5, §8)."""
    proof = request.headers.get("DPoP")
    client_id = claimed_client_id(request)
    if not proof and client_id not in dpop.bound_clients:
        return None
    try:
        g.cnf = {**getattr(g, "cnf", {}), "jkt": dpop.verify(proof, "POST", request.base_url)}
    except DPoPError as exc:
        headers = {"Cache-Control": "no-store"}
        if exc.error == DPOP_NONCE_ERROR:
            headers["DPoP-Nonce"] = dpop.nonce
        return json_response(
            {"error": exc.error, "error_description": exc.description}, 400, headers
        )
    return None


def claimed_client_id(req: Request) -> str | None:
    """The client id a token request claims to be, before authentication."""
    if req.authorization and req.authorization.type == "basic":
        return req.authorization.username
    if client_id := req.form.get("client_id"):
        return client_id
    if req.form.get("grant_type") == JWT_BEARER_GRANT and (grant := req.form.get("assertion")):
        try:
            issuer = unverified_claims(grant).get("iss")
        except ValueError:
            return None
        return issuer if isinstance(issuer, str) else None
    if assertion := req.form.get("client_assertion"):
        try:
            claims = unverified_claims(assertion)
        except ValueError:
            return None
        sub = claims.get("sub") or claims.get("iss")
        return sub if isinstance(sub, str) else None
    return None


def server_metadata(
    urls: AuthServerUrls, clients: ClientRegistry, *, client_certs: bool = False
) -> dict[str, Any]:
    """``client_certs``: the server verifies TLS client certificates (tls_client_auth)."""
    auth_methods = [m for m in AUTH_METHODS if client_certs or not m.endswith("tls_client_auth")]
    return {
        "issuer": urls.issuer,
        "token_endpoint": urls.token_url,
        "jwks_uri": urls.jwks_url,
        "grant_types_supported": [GRANT_TYPE, JWT_BEARER_GRANT],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": [
            *SECRET_JWT_ALGORITHMS,
            *PRIVATE_KEY_JWT_ALGORITHMS,
        ],
        "scopes_supported": clients.all_scopes(),
    }


def register_workload_identity(server: AuthorizationServer, audiences: list[str]) -> None:
    """Federated client assertions (a platform's token) and the JWT-bearer grant."""
    server.register_client_auth_method(FEDERATED_METHOD, authenticate_federated_client)
    server.register_grant(jwt_bearer_grant(audiences))


def create_auth_app(
    *,
    urls: AuthServerUrls,
    issuer_path: str,
    clients: ClientRegistry,
    signing_key: SigningKey,
    tokens: TokenRegistry,
    stats: Stats,
    faults: FaultSet,
    client_certs: bool = False,
    dpop: DPoPVerifier | None = None,
    cert_binding: CertificateBinding | None = None,
) -> Flask:
    app = Flask("devserver.auth")
    dpop = dpop or DPoPVerifier()
    cert_binding = cert_binding or CertificateBinding()
    # authlib logs each issued access token at DEBUG level; keep tokens out of logs.
    logging.getLogger(ClientCredentialsGrant.__module__).setLevel(logging.INFO)

    def save_token(token: dict[str, Any], _request: OAuth2Request) -> None:
        access_token = str(token["access_token"])
        tokens.record_issued(str(unverified_claims(access_token)["jti"]), access_token)

    server = DevAuthorizationServer(app, query_client=clients.get, save_token=save_token)
    server.register_token_generator("default", AccessTokenGenerator(urls, signing_key))
    server.register_grant(ClientCredentials)
    assertion_audiences = [urls.token_url, urls.issuer]
    server.register_client_auth_method(
        "client_secret_jwt", ClientSecretJWTAssertion(assertion_audiences)
    )
    server.register_client_auth_method(
        "private_key_jwt", PrivateKeyJWTAssertion(assertion_audiences)
    )
    # Never succeeds without a verified client certificate, so it is safe on plain HTTP too.
    server.register_client_auth_method("tls_client_auth", authenticate_tls_client)
    register_workload_identity(server, assertion_audiences)
    server.register_client_auth_method(
        SELF_SIGNED_METHOD, self_signed_authenticator(cert_binding.self_signed)
    )

    token_bp = Blueprint("token", __name__, url_prefix=issuer_path or None)

    @token_bp.post(TOKEN_PATH)
    def issue_token() -> Response:
        refused = check_dpop(dpop, clients)
        if refused is not None:
            return refused
        certificate_confirmation(cert_binding)
        response: Response = server.create_token_response()
        if dpop.require_nonce:
            response.headers["DPoP-Nonce"] = dpop.nonce
        return response

    def record(req: Request, response: Response) -> None:
        stats.record_token_request(capture(req, response, claimed_client_id(req)))

    instrument(token_bp, faults, record)
    app.register_blueprint(token_bp)

    discovery_bp = Blueprint("discovery", __name__)

    def metadata() -> Response:
        return json_response(server_metadata(urls, clients, client_certs=client_certs))

    # OIDC discovery appends the well-known suffix to the issuer; RFC 8414 inserts it
    # between host and issuer path. The appended RFC 8414 form is served as well
    # because many clients build it that way.
    discovery_bp.add_url_rule(f"{issuer_path}/.well-known/openid-configuration", "oidc", metadata)
    discovery_bp.add_url_rule(
        f"/.well-known/oauth-authorization-server{issuer_path}", "rfc8414", metadata
    )
    if issuer_path:
        discovery_bp.add_url_rule(
            f"{issuer_path}/.well-known/oauth-authorization-server", "rfc8414_appended", metadata
        )
    discovery_bp.add_url_rule(
        f"{issuer_path}{JWKS_PATH}", "jwks", lambda: json_response(signing_key.jwks())
    )
    app.register_blueprint(discovery_bp)
    return app
