"""OAuthCCHook: an HttpHook whose requests carry an OAuth 2.0 client-credentials token."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import requests
from airflow.providers.http.hooks.http import HttpHook

from airflow_provider_oauthcc.airflow_compat import amask_secret, mask_secret
from airflow_provider_oauthcc.auth import deployment, masking, metrics
from airflow_provider_oauthcc.auth.client import TokenClient
from airflow_provider_oauthcc.auth.config import ClientConfig, as_flag
from airflow_provider_oauthcc.auth.errors import ApiError, ApiUnauthorizedError, OAuthCCError
from airflow_provider_oauthcc.auth.provider import TokenProvider
from airflow_provider_oauthcc.auth.redact import scrub
from airflow_provider_oauthcc.auth.requests_auth import BearerAuth
from airflow_provider_oauthcc.auth.tls import warn_if_unverified
from airflow_provider_oauthcc.hooks.token_cache import hook_token_cache, redis_client


class _AirflowStats:
    """Airflow's Stats (statsd / OpenTelemetry, as the deployment configures), imported on use."""

    def incr(self, name: str) -> None:
        from airflow_provider_oauthcc.airflow_compat import Stats

        Stats.incr(name)

    def timing(self, name: str, seconds: float) -> None:
        from airflow_provider_oauthcc.airflow_compat import Stats

        Stats.timing(name, timedelta(seconds=seconds))


def _fernet_key() -> str | None:
    """Airflow's [core] fernet_key, the deployment secret of the shared token caches."""
    try:
        # Core's configuration (same module on 2.11 to 3.3), as the other processes of the
        # deployment read it; not the task SDK's.
        from airflow.configuration import conf

        return conf.get("core", "fernet_key", fallback=None) or None
    except Exception:
        return None


masking.set_masker(mask_secret, amask_secret())
metrics.set_recorder(_AirflowStats())
deployment.set_deployment_secret(_fernet_key())


class OAuthCCHook(HttpHook):
    """Call an OAuth 2.0 protected HTTP API with a client-credentials token.

    Works as :class:`~airflow.providers.http.hooks.http.HttpHook`: ``run()`` sends a request
    relative to the connection's host, ``get_conn()`` returns a ``requests.Session``. Tokens are
    fetched with the connection's client authentication, cached, refreshed before expiry and,
    after a 401 from the API, refreshed once and the request replayed. Unlike ``HttpHook``,
    connection extras are never sent as headers: only the ``headers`` extra is.

    :param method: HTTP method of ``run()`` (default GET).
    :param oauth_conn_id: an ``oauth2_client_credentials`` connection.
    """

    conn_name_attr = "oauth_conn_id"
    default_conn_name = "oauth_cc_default"
    conn_type = "oauth2_client_credentials"
    hook_name = "OAuth2 Client Credentials"

    def __init__(
        self, method: str = "GET", oauth_conn_id: str = default_conn_name, **kwargs: Any
    ) -> None:
        super().__init__(method=method, http_conn_id=oauth_conn_id, **kwargs)
        self.oauth_conn_id = oauth_conn_id
        self._oauth_config: ClientConfig | None = None
        self._token_provider: TokenProvider | None = None

    # The connection form for Airflow 3.1; 3.2+ reads it from provider info (conn-fields).
    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        from airflow_provider_oauthcc.legacy_connection_form import connection_form_widgets

        return connection_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        from airflow_provider_oauthcc.legacy_connection_form import ui_field_behaviour

        return ui_field_behaviour()

    def _set_base_url(self, connection: Any) -> None:
        """As HttpHook, but a host without a scheme means https: the token must not travel
        in clear (HttpHook's default is http)."""
        host = connection.host or ""
        schema = (connection.schema or "").lower()
        if host and "://" not in host and schema not in ("http", "https"):
            connection = _with_scheme(connection, "https")
        super()._set_base_url(connection)

    @property
    def oauth_config(self) -> ClientConfig:
        """The connection's OAuth settings, validated (raises OAuthCCConfigError)."""
        if self._oauth_config is None:
            return self.use_connection(self.get_connection(self.oauth_conn_id))
        return self._oauth_config

    def use_connection(self, connection: Any) -> ClientConfig:
        """Read the OAuth settings and the API base URL from ``connection`` (already fetched,
        e.g. asynchronously in the triggerer) instead of looking it up."""
        masking.mask(connection.password)
        self._set_base_url(connection)
        config = ClientConfig.from_connection(
            client_id=connection.login,
            client_secret=connection.password,
            extra=connection.extra,
            api_base_url=self.base_url,
        )
        if config.unknown_keys:
            self.log.warning(
                "Connection %s has extras this hook does not use: %s (not sent anywhere)",
                self.oauth_conn_id,
                ", ".join(config.unknown_keys),
            )
        self._oauth_config = config
        return config

    @property
    def token_provider(self) -> TokenProvider:
        if self._token_provider is None:
            config = self.oauth_config
            cache = hook_token_cache(config, self._cache_redis_client)
            self._token_provider = TokenProvider(config, cache=cache)
        return self._token_provider

    def _cache_redis_client(self) -> Any:
        """The client of the ``cache_redis_conn_id`` connection; called when Redis is first
        used."""
        conn_id = self.oauth_config.cache_redis_conn_id
        try:
            connection = self.get_connection(conn_id)
        except Exception as exc:
            raise LookupError(
                f"cannot read the Redis connection '{conn_id}' ({type(exc).__name__})"
            ) from None
        return redis_client(connection)

    def get_token(self) -> str:
        """A valid access token (cached, refreshed before expiry)."""
        return self.token_provider.get_token().access_token

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        config = self.oauth_config
        session: requests.Session = _ConnectionSession()
        session.auth = BearerAuth(self.token_provider, self.base_url)
        self.merged_extra = request_options(config, extra_options or {})
        session.verify = self.merged_extra.get("verify", config.verify)
        warn_if_unverified(session.verify, self.base_url, "API")
        session.proxies = dict(config.proxies or {})
        session.stream = as_flag("stream", self.merged_extra.get("stream", False))
        session.trust_env = as_flag("trust_env", self.merged_extra.get("trust_env", True))
        if "max_redirects" in self.merged_extra:
            session.max_redirects = int(self.merged_extra["max_redirects"])
        if "cert" in self.merged_extra:
            session.cert = self.merged_extra["cert"]
        session = self._configure_session_from_mount_adapters(session)
        session.headers.update(config.api_headers)
        if self.default_headers:
            session.headers.update(self.default_headers)
        if headers:
            session.headers.update(headers)
        return session

    def run_and_check(
        self,
        session: requests.Session,
        prepped_request: requests.PreparedRequest,
        extra_options: dict[Any, Any],
    ) -> Any:
        # Older HTTP providers (5.3.0, our floor) hand this the caller's extra_options alone;
        # merged_extra (get_conn, from the same call) adds the connection's options, read as
        # flags: allow_redirects, check_response ...
        merged = getattr(self, "merged_extra", None)
        return super().run_and_check(session, prepped_request, merged or extra_options)

    def check_response(self, response: requests.Response) -> None:
        if response.ok:
            return
        self.log.error("HTTP error: %s", response.reason)
        # Scrubbed before it is cut: a cut could leave a piece of a secret the masker misses.
        self.log.error("%s", scrub(response.text, self._secret_forms(), limit=1000))
        raise api_error(response)

    def test_connection(self) -> tuple[bool, str]:
        """Fetch a token now (no cache) and say what came back, or precisely why not."""
        try:
            client = TokenClient(self.oauth_config, max_attempts=2, backoff=0.2)
            try:
                token = client.fetch_token()
            finally:
                client.close()
        except OAuthCCError as exc:
            return False, str(exc)
        except Exception as exc:
            return False, f"{type(exc).__name__}: {scrub(str(exc), self._secret_forms())}"
        scope = f"scope '{token.scope}'" if token.scope else "no scope returned"
        return True, (
            f"Token obtained from {client.token_url}: {token.token_type}, "
            f"expires in {token.expires_in()} s, {scope}"
        )

    def _secret_forms(self) -> tuple[str, ...]:
        """The connection's secrets in every echoed form, and the current token."""
        config = self._oauth_config
        if config is None:
            return ()
        forms = config.secret_forms
        if self._token_provider is not None:
            token = self._token_provider.cache.get(config.cache_key)
            if token is not None:
                forms = (token.access_token, *forms)
        return forms


class _ConnectionSession(requests.Session):
    """A session whose ``verify`` is the connection's, whatever the environment says.

    requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's ``verify``
    (psf/requests#3829): a CA bundle or ``false`` set on the connection would be ignored on
    machines that export one. Only a ``verify`` given for one request wins over the session's.
    """

    def merge_environment_settings(  # type: ignore[override]
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        settings = dict(super().merge_environment_settings(url, proxies, stream, verify, cert))
        if verify is None:
            settings["verify"] = self.verify
        return settings


FLAG_OPTIONS = frozenset({"allow_redirects", "check_response", "stream", "trust_env"})


def request_options(config: ClientConfig, extra_options: dict[str, Any]) -> dict[str, Any]:
    """What HttpHook.run_and_check reads (timeout, allow_redirects, check_response) and more."""
    options: dict[str, Any] = {"timeout": config.timeout}
    options.update(config.session_options)
    options.update(extra_options)
    if "verify_ssl" in options:
        options.setdefault("verify", options.pop("verify_ssl"))
    # Extras from a connection URI or the UI's JSON editor may be strings: "false" is False.
    for key in FLAG_OPTIONS & options.keys():
        options[key] = as_flag(key, options[key])
    return options


def api_error(response: requests.Response) -> ApiError:
    """An ApiError for a failed API response; the WWW-Authenticate error for a 401."""
    status = response.status_code
    message = f"{status}:{response.reason}"
    if status == 401:
        challenge = _parse_challenge(response.headers.get("WWW-Authenticate", ""))
        error, description = challenge.get("error"), challenge.get("error_description")
        detail = f" ({error}: {description})" if description else f" ({error})" if error else ""
        not_replayed = getattr(response, "oauthcc_not_replayed", None)
        why = (
            f"the API rejected the token; the request was not replayed with a fresh one: "
            f"{not_replayed}"
            if not_replayed
            else "the API rejected the token, also after a refresh"
        )
        return ApiUnauthorizedError(
            f"{message}: {why}{detail}",
            status=status,
            error=error,
            error_description=description,
        )
    return ApiError(message, status=status)


def _parse_challenge(header: str) -> dict[str, str]:
    """Parameters of a ``Bearer`` WWW-Authenticate challenge (RFC 6750 §3)."""
    from requests.utils import parse_dict_header

    scheme, _, params = header.partition(" ")
    if scheme.lower() != "bearer":
        return {}
    parsed = parse_dict_header(params)  # type: ignore[no-untyped-call]
    return {k: v for k, v in parsed.items() if isinstance(v, str)}


def _with_scheme(connection: Any, scheme: str) -> Any:
    """A view of ``connection`` whose schema is ``scheme`` (the connection is not changed)."""

    class _Schemed:
        def __getattr__(self, name: str) -> Any:
            return getattr(connection, name)

        schema = scheme

    return _Schemed()
