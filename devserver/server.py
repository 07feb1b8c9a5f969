"""``DevServer``: the authorization server and the protected API, run together."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

from flask import Flask

from devserver.api import create_api_app, create_api_blueprint
from devserver.auth_server import JWKS_PATH, TOKEN_PATH, AuthServerUrls, create_auth_app
from devserver.clients import Client, ClientRegistry, build_client
from devserver.control import create_control_blueprint
from devserver.dataset import DEFAULT_SIZE, Dataset
from devserver.dpop import DPoPVerifier
from devserver.exports import DEFAULT_READY_AFTER, ExportJobs
from devserver.faults import FaultSet
from devserver.feed import ChangeFeed, add_feed_control, add_feed_routes
from devserver.httpd import WSGI_WORKERS, BackgroundServer
from devserver.keys import SigningKey
from devserver.mtls import CertificateBinding
from devserver.rate_limit import ApiRateLimit
from devserver.rate_limit import create_control_blueprint as rate_limit_control
from devserver.stats import Stats
from devserver.tls import ServerTLS, TLSBackgroundServer
from devserver.tokens import AccessTokenVerifier, TokenRegistry


class DevServer:
    """A local OAuth 2.0 authorization server plus a protected API, each on its own
    loopback port. Nothing is bound until ``start()``; clients can be added any time.

    ``issuer_path`` mounts the issuer under a path, e.g. ``"/realms/demo"`` gives
    ``http://127.0.0.1:P/realms/demo`` (Keycloak style). ``expected_audience``, when
    set, makes the API reject tokens whose ``aud`` does not contain it.

    ``tls`` serves both over HTTPS (``devserver.pki.make_dev_pki`` makes the files); its
    ``client_ca_file`` makes the authorization server ask for client certificates, which
    enables ``tls_client_auth`` clients.

    ``api_workers`` bounds the API requests served at once (a slow request holds a worker);
    ``export_ready_after`` is how long an export job takes (``exports.ready_after`` later).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        auth_port: int = 0,
        api_port: int = 0,
        issuer_path: str = "",
        dataset_size: int = DEFAULT_SIZE,
        expected_audience: str | None = None,
        capture: bool = True,
        tls: ServerTLS | None = None,
        api_workers: int = WSGI_WORKERS,
        export_ready_after: float = DEFAULT_READY_AFTER,
    ) -> None:
        if issuer_path and (not issuer_path.startswith("/") or issuer_path.endswith("/")):
            raise ValueError("issuer_path must start with '/' and not end with '/'")
        self.host = host
        self.auth_port = auth_port
        self.api_port = api_port
        self.issuer_path = issuer_path
        self.expected_audience = expected_audience
        self.tls = tls
        self.clients = ClientRegistry()
        self.stats = Stats(capture=capture)
        self.api_faults = FaultSet("api")
        self.token_faults = FaultSet("token")
        self.tokens = TokenRegistry()
        self.dataset = Dataset(dataset_size)
        self.exports = ExportJobs(export_ready_after)
        self.feed = ChangeFeed()
        self.api_workers = api_workers
        #: Per-client limit on the API (off until ``api_rate_limit.configure(per_second=N)``).
        self.api_rate_limit = ApiRateLimit()
        self.signing_key = SigningKey()
        # Sender-constrained tokens: DPoP at each server, certificate binding (RFC 8705).
        self.token_dpop = DPoPVerifier()
        self.api_dpop = DPoPVerifier()
        self.cert_binding = CertificateBinding()
        self._auth: BackgroundServer | TLSBackgroundServer | None = None
        self._api: BackgroundServer | TLSBackgroundServer | None = None
        self._urls: AuthServerUrls | None = None

    # -- clients ---------------------------------------------------------------

    def add_client(
        self,
        client_id: str,
        *,
        secret: str | None = None,
        public_jwk: dict[str, Any] | None = None,
        auth_methods: Sequence[str] = ("client_secret_basic",),
        scope: str = "",
        default_scope: str | None = None,
        token_lifetime: int = 3600,
        tls_client_auth_subject_dn: str | None = None,
    ) -> Client:
        """Register (or replace) a client that may use exactly ``auth_methods``.

        ``scope`` is what the client may request; a request without scope gets
        ``default_scope`` (default: all of ``scope``). ``token_lifetime`` is the
        access-token lifetime in seconds. A ``tls_client_auth`` client is the one whose
        certificate has ``CN=<client_id>``, or the ``tls_client_auth_subject_dn`` given.
        """
        client = build_client(
            client_id,
            secret=secret,
            public_jwk=public_jwk,
            auth_methods=auth_methods,
            scope=scope,
            default_scope=default_scope,
            token_lifetime=token_lifetime,
            tls_client_auth_subject_dn=tls_client_auth_subject_dn,
        )
        self.clients.add(client)
        return client

    def remove_client(self, client_id: str) -> None:
        self.clients.remove(client_id)

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> Self:
        """Bind both servers (ephemeral ports unless given) and serve from daemon threads."""
        if self._auth is not None:
            raise RuntimeError("DevServer already started")
        auth = self._bind(self.auth_port, client_certs=True)
        try:
            # The API asks for (optional) client certificates when tokens may be bound to them.
            api = self._bind(self.api_port, client_certs=True, optional=True)
        except BaseException:
            auth.stop()
            raise
        try:
            issuer = f"{auth.url}{self.issuer_path}"
            urls = AuthServerUrls(
                issuer=issuer,
                token_url=f"{issuer}{TOKEN_PATH}",
                jwks_url=f"{issuer}{JWKS_PATH}",
                default_audience=api.url,
            )
            auth.start(self._auth_app(urls))
            if isinstance(api, BackgroundServer):
                api.start(self._api_app(urls), workers=self.api_workers)
            else:
                api.start(self._api_app(urls))
        except BaseException:
            auth.stop()
            api.stop()
            raise
        self._auth, self._api, self._urls = auth, api, urls
        return self

    def _bind(
        self, port: int, *, client_certs: bool, optional: bool = False
    ) -> BackgroundServer | TLSBackgroundServer:
        if self.tls is None:
            return BackgroundServer(self.host, port)
        context = self.tls.context(client_certs=client_certs, optional=optional)
        return TLSBackgroundServer(self.host, port, context)

    def _auth_app(self, urls: AuthServerUrls) -> Flask:
        return create_auth_app(
            urls=urls,
            issuer_path=self.issuer_path,
            clients=self.clients,
            signing_key=self.signing_key,
            tokens=self.tokens,
            stats=self.stats,
            faults=self.token_faults,
            client_certs=self.tls is not None and self.tls.verifies_client_certs,
            dpop=self.token_dpop,
            cert_binding=self.cert_binding,
        )

    def _api_app(self, urls: AuthServerUrls) -> Flask:
        verifier = AccessTokenVerifier(
            self.signing_key.public, urls.issuer, self.tokens, lambda: self.expected_audience
        )
        api = create_api_blueprint(
            verifier=verifier,
            dataset=self.dataset,
            stats=self.stats,
            faults=self.api_faults,
            exports=self.exports,
            dpop=self.api_dpop,
            rate_limit=self.api_rate_limit,
        )
        add_feed_routes(api, self.feed)
        control = create_control_blueprint(self)
        add_feed_control(control, self.feed)
        app = create_api_app(api, control)
        app.register_blueprint(rate_limit_control(self.api_rate_limit))
        return app

    def stop(self) -> None:
        # Held requests would keep their worker threads (and the shutdown) waiting.
        self.api_faults.clear()
        self.token_faults.clear()
        servers = [s for s in (self._api, self._auth) if s is not None]
        for server in servers:  # both shut down in parallel
            server.request_stop()
        for server in servers:
            server.stop()
        self._auth = self._api = None
        self._urls = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._auth is not None

    # -- addresses -------------------------------------------------------------

    def _started(self) -> AuthServerUrls:
        if self._urls is None:
            raise RuntimeError("DevServer is not started")
        return self._urls

    @property
    def issuer(self) -> str:
        return self._started().issuer

    @property
    def token_url(self) -> str:
        return self._started().token_url

    @property
    def jwks_url(self) -> str:
        return self._started().jwks_url

    @property
    def api_url(self) -> str:
        return self._started().default_audience

    @property
    def openid_configuration_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def oauth_metadata_url(self) -> str:
        """RFC 8414 metadata URL (well-known suffix inserted before the issuer path)."""
        origin = self.issuer.removesuffix(self.issuer_path) if self.issuer_path else self.issuer
        return f"{origin}/.well-known/oauth-authorization-server{self.issuer_path}"

    @property
    def control_url(self) -> str:
        return f"{self.api_url}/_control"

    # -- test controls -----------------------------------------------------------

    @property
    def dataset_size(self) -> int:
        return self.dataset.size

    @dataset_size.setter
    def dataset_size(self, size: int) -> None:
        self.dataset.size = size

    def revoke_all_tokens(self) -> int:
        """Revoke every token issued so far (the API then rejects them); returns the count."""
        return self.tokens.revoke_all()

    def require_dpop(self, client_id: str) -> None:
        """Tokens of ``client_id`` are DPoP-bound: every token request needs a proof."""
        self.token_dpop.bound_clients.add(client_id)

    def bind_to_certificate(self, client_id: str) -> None:
        """Tokens of ``client_id`` are bound to its TLS client certificate (cnf.x5t#S256)."""
        self.cert_binding.bound_clients.add(client_id)

    def register_self_signed_certificate(self, client_id: str, cert_pem: str) -> None:
        """The certificate a ``self_signed_tls_client_auth`` client authenticates with."""
        from devserver.mtls import certificate_thumbprint

        self.cert_binding.self_signed[client_id] = certificate_thumbprint(cert_pem)

    def demand_dpop_nonces(self, *, token: bool = True, api: bool = True) -> None:
        """Make the authorization server and/or the API demand a server nonce in proofs."""
        self.token_dpop.require_nonce = token
        self.api_dpop.require_nonce = api

    def reset(self) -> None:
        """Zero the counters, drop captures and clear all faults."""
        self.stats.reset()
        self.api_rate_limit.reset()
        self.token_dpop.reset_counts()
        self.api_dpop.reset_counts()
        self.api_faults.clear()
        self.token_faults.clear()
