"""ClientConfig: the connection's OAuth settings, parsed and validated before any network call."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_oauthcc.auth.egress import check_url, proxy_password
from airflow_provider_oauthcc.auth.errors import OAuthCCConfigError
from airflow_provider_oauthcc.auth.rate_limit_core import BudgetSettings, parse_rate_limit

AUTH_METHODS = (
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "tls_client_auth",
    "federated_assertion",
    "self_signed_tls_client_auth",
)
# RFC 8705 §2: the TLS client certificate authenticates the client (PKI or self-signed).
MTLS_METHODS = ("tls_client_auth", "self_signed_tls_client_auth")
SECRET_METHODS = ("client_secret_basic", "client_secret_post", "client_secret_jwt")
# RFC 6749 §2.3.1: client_secret_basic form-encodes ID and secret before base64 ("form");
# "plain" is for the servers that compare the decoded header without URL-decoding it.
BASIC_ENCODINGS = ("form", "plain")
CACHE_BACKENDS = ("memory", "file", "redis")
# DPoP (RFC 9449) proof key algorithms; EdDSA is left out (deprecated by RFC 9864).
DPOP_ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "PS256")
DEFAULT_DPOP_ALGORITHM = "ES256"
DEFAULT_REDIS_CONN_ID = "redis_default"

# Workload identity and the JWT-bearer grant (RFC 7523).
CLIENT_CREDENTIALS = "client_credentials"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GRANT_TYPES = {
    CLIENT_CREDENTIALS: CLIENT_CREDENTIALS,
    JWT_BEARER: JWT_BEARER,
    "jwt_bearer": JWT_BEARER,
}
DEFAULT_ASSERTION_LIFETIME = 300
# Microsoft Entra workload identity (AKS) publishes these to the pod, as azure-identity reads them.
AZURE_ENV_FILE, AZURE_ENV_CLIENT, AZURE_ENV_TENANT = (
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
)
AZURE_ENV_AUTHORITY = "AZURE_AUTHORITY_HOST"
ENTRA_AUTHORITY = "https://login.microsoftonline.com"

# The token endpoint's key is auth_url: "token_url" (accepted as another name) contains
# "token", so Airflow would show its value as *** in the UI, the CLI and every log line.
TOKEN_URL_KEYS = ("auth_url", "token_url")
# Extras keys. Airflow hides any extra whose key contains a sensitive word ("token", "secret",
# "private_key", "proxy" ...), so the non-secret ones are named to stay visible.
OAUTH_KEYS = frozenset(
    {
        "auth_url",
        "token_url",
        "issuer",
        "scope",
        "audience",
        "resource",
        "auth_method",
        "basic_auth_encoding",
        "private_key",
        "private_key_passphrase",
        "key_id",
        "signing_algorithm",
        "client_cert",
        "client_cert_key",
        "request_params",
        "verify",
        "timeout",
        "proxies",
        "allow_insecure_http",
        "default_expires_in",
        "headers",
        "cache_backend",
        "cache_dir",
        "cache_redis_conn_id",
        "client_assertion_file",
        "grant_type",
        "assertion_issuer",
        "assertion_subject",
        "assertion_audience",
        "assertion_lifetime",
        # Sender-constrained tokens (RFC 9449 DPoP).
        "dpop",
        "dpop_alg",
        # The request budget (see _budget).
        "rate_limit",
        "rate_limit_burst",
        "max_concurrency",
        "rate_limit_learn",
    }
)
# HttpHook's session options, honoured for API requests as HttpHook honours them.
SESSION_KEYS = frozenset(
    {"stream", "allow_redirects", "max_redirects", "trust_env", "check_response", "verify_ssl"}
)
# Token-request parameters that the grant and client authentication own.
RESERVED_PARAMS = frozenset(
    {
        "grant_type",
        "client_id",
        "client_secret",
        "client_assertion",
        "client_assertion_type",
        "assertion",
        "scope",
        "audience",
        "resource",
    }
)
DEFAULT_TIMEOUT = 30.0
DEFAULT_EXPIRES_IN = 300

_ALGORITHMS_BY_KEY_TYPE = {
    "RSA": ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    "EC": ("ES256", "ES384", "ES512"),
    "OKP": ("EdDSA",),
}


@dataclass(frozen=True)
class ClientConfig:
    """Validated OAuth client settings. Secrets are kept out of ``repr``."""

    client_id: str
    token_url: str | None
    issuer: str | None = None
    auth_method: str = "client_secret_basic"
    basic_auth_encoding: str = "form"
    client_secret: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    private_key_passphrase: str | None = field(default=None, repr=False)
    key_id: str | None = None
    signing_algorithm: str | None = None
    client_cert: str | None = None
    client_cert_key: str | None = None
    scope: str | None = None
    audience: str | None = None
    resource: tuple[str, ...] = ()
    request_params: Mapping[str, str] = field(default_factory=dict)
    verify: bool | str = True
    timeout: float = DEFAULT_TIMEOUT
    proxies: Mapping[str, str] | None = field(default=None, repr=False)
    allow_insecure_http: bool = False
    default_expires_in: int = DEFAULT_EXPIRES_IN
    cache_backend: str = "memory"
    cache_dir: str | None = None
    cache_redis_conn_id: str = DEFAULT_REDIS_CONN_ID
    token_url_key: str = "auth_url"
    """The extra the token endpoint came from, for messages."""
    api_base_url: str | None = None
    api_headers: Mapping[str, str] = field(default_factory=dict)
    session_options: Mapping[str, Any] = field(default_factory=dict)
    unknown_keys: tuple[str, ...] = ()
    # Workload identity (federated_assertion) and the JWT-bearer grant.
    client_assertion_file: str | None = None
    """federated_assertion: the file the platform writes the client assertion to."""
    grant_type: str = CLIENT_CREDENTIALS
    assertion_issuer: str | None = None
    assertion_subject: str | None = None
    assertion_audience: str | None = None
    assertion_lifetime: int = DEFAULT_ASSERTION_LIFETIME
    # Sender-constrained tokens: DPoP (RFC 9449) proofs with a key pair per token; with an
    # mTLS method the client certificate also goes to the API (RFC 8705 bound tokens).
    dpop: bool = False
    dpop_alg: str = "ES256"
    inline_cert_key: str | None = field(default=None, repr=False)
    """A TLS client key given inline as PEM (a secret: masked, and never in a message)."""
    budget: BudgetSettings = field(default_factory=BudgetSettings)

    @property
    def api_client_cert(self) -> str | tuple[str, str] | None:
        """The client certificate the API gets: the token endpoint's, with an mTLS method
        (a certificate-bound token is refused without it)."""
        if self.auth_method not in MTLS_METHODS or not self.client_cert:
            return None
        if self.client_cert_key:
            return (self.client_cert, self.client_cert_key)
        return self.client_cert

    @classmethod
    def from_connection(
        cls,
        *,
        client_id: str | None,
        client_secret: str | None,
        extra: Mapping[str, Any] | str | None,
        api_base_url: str | None = None,
    ) -> ClientConfig:
        """Build from Airflow connection parts: login, password, extra (dict or JSON text)."""
        extras = _parse_extra(extra)
        grant_type = _grant_type(extras)
        method = _choice(extras, "auth_method", AUTH_METHODS, _default_method(extras, grant_type))
        if grant_type == JWT_BEARER and method != "private_key_jwt":
            raise OAuthCCConfigError(
                "grant_type",
                "the JWT-bearer grant signs its assertion with the connection's private key: "
                "leave auth_method empty (or 'private_key_jwt') and set private_key",
            )
        if method == "federated_assertion":
            client_id, extras = _workload_identity(client_id, extras)
        if not client_id or not str(client_id).strip():
            where = f" (or {AZURE_ENV_CLIENT})" if method == "federated_assertion" else ""
            raise OAuthCCConfigError(
                "login", f"the Client ID is empty; set it in the Login field{where}"
            )
        allow_http = _bool(extras, "allow_insecure_http", False)
        token_url_key = _token_url_key(extras)
        token_url = _url(extras, token_url_key, allow_http)
        issuer = _url(extras, "issuer", allow_http)
        if token_url is None and issuer is None:
            raise OAuthCCConfigError(
                "auth_url",
                "no token endpoint: set 'auth_url' to the token endpoint URL (e.g. "
                "https://idp.example.com/oauth/token) or 'issuer' to discover it"
                + (f" (or {AZURE_ENV_TENANT})" if method == "federated_assertion" else ""),
            )
        secret = client_secret or None
        _check_encodable("login", str(client_id))
        if secret:
            _check_encodable("password", secret)
        api_base_url = _api_base_url(api_base_url, allow_http)
        if method in SECRET_METHODS and not secret:
            hint = (
                " (a private key is set: did you mean auth_method 'private_key_jwt'?)"
                if extras.get("private_key")
                else ""
            )
            raise OAuthCCConfigError(
                "password", f"auth method '{method}' needs the client secret in Password{hint}"
            )
        private_key = _private_key(extras, method)
        passphrase = _str(extras, "private_key_passphrase")
        signing_algorithm = _str(extras, "signing_algorithm")
        if method == "private_key_jwt":
            signing_algorithm = _check_private_key(private_key, passphrase, signing_algorithm)
        elif method == "client_secret_jwt":
            signing_algorithm = signing_algorithm or "HS256"
            if signing_algorithm not in ("HS256", "HS384", "HS512"):
                raise OAuthCCConfigError(
                    "signing_algorithm", "client_secret_jwt signs with HS256, HS384 or HS512"
                )
        client_cert, client_cert_key, inline_key = _client_certificate(extras, method)
        _bool(extras, "trust_env", True)  # validated now, read through .trust_env
        unknown = tuple(sorted(set(extras) - OAUTH_KEYS - SESSION_KEYS))
        return cls(
            client_id=str(client_id).strip(),
            token_url=token_url,
            token_url_key=token_url_key,
            issuer=issuer,
            auth_method=method,
            basic_auth_encoding=_choice(extras, "basic_auth_encoding", BASIC_ENCODINGS, "form"),
            client_secret=secret,
            private_key=private_key,
            private_key_passphrase=passphrase,
            key_id=_str(extras, "key_id"),
            signing_algorithm=signing_algorithm,
            client_cert=client_cert,
            client_cert_key=client_cert_key,
            scope=parse_scope(extras),
            audience=_str(extras, "audience"),
            resource=parse_resources(extras),
            request_params=_request_params(extras),
            verify=_verify(extras),
            timeout=_positive_number(extras, "timeout", DEFAULT_TIMEOUT),
            proxies=_string_map(extras, "proxies") or None,
            allow_insecure_http=allow_http,
            default_expires_in=int(
                _positive_number(extras, "default_expires_in", DEFAULT_EXPIRES_IN)
            ),
            cache_backend=_choice(extras, "cache_backend", CACHE_BACKENDS, "memory"),
            cache_dir=_absolute_path(extras, "cache_dir"),
            cache_redis_conn_id=_str(extras, "cache_redis_conn_id") or DEFAULT_REDIS_CONN_ID,
            api_base_url=api_base_url,
            api_headers=_string_map(extras, "headers"),
            session_options={k: extras[k] for k in SESSION_KEYS if k in extras},
            unknown_keys=unknown,
            client_assertion_file=_str(extras, "client_assertion_file"),
            grant_type=grant_type,
            assertion_issuer=_str(extras, "assertion_issuer"),
            assertion_subject=_str(extras, "assertion_subject"),
            assertion_audience=_str(extras, "assertion_audience"),
            assertion_lifetime=int(
                _positive_number(extras, "assertion_lifetime", DEFAULT_ASSERTION_LIFETIME)
            ),
            inline_cert_key=inline_key,
            **_sender_constraint(extras),
            budget=_budget(extras),
        )

    @property
    def cache_key(self) -> str:
        """Identity of the token: everything that changes which token the server would issue,
        or whether it issues one, with a keyed digest of the credential in use (never the
        credential itself)."""
        from airflow_provider_oauthcc.auth.deployment import keyed_digest

        parts: tuple[Any, ...] = (
            self.token_url or f"issuer:{self.issuer}",
            self.client_id,
            self.auth_method,
            self.scope or "",
            self.audience or "",
            list(self.resource),
            sorted(self.request_params.items()),
            keyed_digest("credential", self.credential()),
        )
        if self.grant_type != CLIENT_CREDENTIALS:
            # Who the JWT-bearer assertion acts for is whose token it is.
            grant = [self.assertion_issuer, self.assertion_subject, self.assertion_audience]
            parts = (*parts, self.grant_type, grant)
        if self.dpop:  # a DPoP-bound token is another token than a bearer one
            parts = (*parts, "dpop")
        return json.dumps(parts, separators=(",", ":"))

    def credential(self) -> bytes:
        """The credential of the configured auth method: what proves the client's identity.

        Files (client certificate and key) are read now, so a rotated certificate is a new
        identity. A field the method does not use (a leftover password) is not part of it.
        """
        if self.auth_method in SECRET_METHODS:
            return (self.client_secret or "").encode()
        if self.auth_method == "federated_assertion":
            from airflow_provider_oauthcc.auth.assertion_file import assertion_identity

            # Who the platform vouches for, not the bytes: those rotate every hour or so.
            assert self.client_assertion_file is not None
            return assertion_identity(self.client_assertion_file)
        pieces: list[bytes] = []
        if self.inline_cert_key:
            pieces.append(self.inline_cert_key.encode())
        if self.auth_method == "private_key_jwt":
            pieces.append((self.private_key or "").encode())
        for path in (self.client_cert, self.client_cert_key):
            if path:
                pieces.append(_read_credential_file(path))
        return b"\0".join(pieces)

    @property
    def trust_env(self) -> bool:
        """The ``trust_env`` extra (proxies and CA bundles from the environment), default on."""
        return _bool(self.session_options, "trust_env", True)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value this config holds, for the log masker and the scrubber."""
        values = [
            self.client_secret,
            self.private_key,
            self.private_key_passphrase,
            self.inline_cert_key,
        ]
        for proxy in (self.proxies or {}).values():
            password = proxy_password(proxy)
            if password:
                values += [password, proxy]
        return tuple(s for s in values if s)

    @property
    def secret_forms(self) -> tuple[str, ...]:
        """The secrets in every form a server may echo them (see ``redact``)."""
        from airflow_provider_oauthcc.auth.redact import secret_forms

        return secret_forms(self.secrets, self.client_id)


def _workload_identity(
    client_id: str | None, extras: dict[str, Any]
) -> tuple[str | None, dict[str, Any]]:
    """federated_assertion: what the connection leaves empty, from the environment that
    Microsoft Entra workload identity sets (the assertion file, the client ID, the tenant)."""
    extras = dict(extras)
    if "client_assertion_file" not in extras:
        path = os.environ.get(AZURE_ENV_FILE, "").strip()
        if not path:
            raise OAuthCCConfigError(
                "client_assertion_file",
                "federated_assertion needs the path of the assertion file the platform writes "
                f"(or the environment variable {AZURE_ENV_FILE})",
            )
        extras["client_assertion_file"] = path
    if not client_id or not str(client_id).strip():
        client_id = os.environ.get(AZURE_ENV_CLIENT, "").strip() or None
    if not any(key in extras for key in (*TOKEN_URL_KEYS, "issuer")):
        tenant = os.environ.get(AZURE_ENV_TENANT, "").strip()
        if tenant:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]*", tenant):
                raise OAuthCCConfigError(
                    "auth_url", f"{AZURE_ENV_TENANT} is not a tenant ID or domain: {tenant!r}"
                )
            authority = os.environ.get(AZURE_ENV_AUTHORITY, "").strip() or ENTRA_AUTHORITY
            if "://" not in authority:
                authority = f"https://{authority}"
            extras["auth_url"] = f"{authority.rstrip('/')}/{tenant}/oauth2/v2.0/token"
    return client_id, extras


def _default_method(extras: Mapping[str, Any], grant_type: str) -> str:
    if grant_type == JWT_BEARER:
        return "private_key_jwt"
    if "client_assertion_file" in extras:
        return "federated_assertion"
    return "client_secret_basic"


def _grant_type(extras: Mapping[str, Any]) -> str:
    value = _str(extras, "grant_type") or CLIENT_CREDENTIALS
    if value not in GRANT_TYPES:
        raise OAuthCCConfigError(
            "grant_type",
            f"unknown grant {value!r}; choose {CLIENT_CREDENTIALS} or {JWT_BEARER} (jwt_bearer)",
        )
    return GRANT_TYPES[value]


def _private_key(extras: Mapping[str, Any], method: str) -> str | None:
    """``private_key`` as PEM text: given inline, or read from the file it names."""
    from airflow_provider_oauthcc.auth.key_material import read_pem_or_file

    value = _str(extras, "private_key")
    if value is None or method in MTLS_METHODS:
        return value  # with mTLS the key is the TLS key (see _client_certificate)
    return read_pem_or_file("private_key", value)


def _client_certificate(
    extras: Mapping[str, Any], method: str
) -> tuple[str | None, str | None, str | None]:
    """``client_cert`` and ``client_cert_key`` as file paths (inline PEM is written to a
    private file), and the key's PEM when it was given inline (a secret to mask). With an mTLS
    method and no ``client_cert_key``, the key may come from ``private_key`` (masked by
    Airflow)."""
    from airflow_provider_oauthcc.auth.key_material import is_pem, pem_path

    cert = _str(extras, "client_cert")
    key = _str(extras, "client_cert_key")
    if method in MTLS_METHODS and key is None:
        key = _str(extras, "private_key")
    inline_key = key if key and is_pem(key) else None
    if method in MTLS_METHODS and not cert:
        raise OAuthCCConfigError(
            "client_cert", f"{method} needs a PEM client certificate (a file path or the PEM)"
        )
    if cert and (method in MTLS_METHODS or method == "private_key_jwt"):
        # private_key_jwt: its thumbprint goes in the assertion header (x5t), how Entra ID
        # finds the key.
        cert = pem_path("client_cert", cert)
        if key and method in MTLS_METHODS:
            field_name = "client_cert_key" if _str(extras, "client_cert_key") else "private_key"
            key = pem_path(field_name, key)
    return cert, key, inline_key


def _sender_constraint(extras: Mapping[str, Any]) -> dict[str, Any]:
    """The DPoP fields: ``dpop`` (on/off) and ``dpop_alg`` (the proof key's algorithm)."""
    dpop = _bool(extras, "dpop", False)
    alg = _choice(extras, "dpop_alg", DPOP_ALGORITHMS, DEFAULT_DPOP_ALGORITHM)
    if "dpop_alg" in extras and not dpop:
        raise OAuthCCConfigError("dpop_alg", "is set but dpop is off: set dpop to true")
    return {"dpop": dpop, "dpop_alg": alg}


def as_flag(key: str, value: Any) -> bool:
    """``value`` as a boolean the way connection extras are read ("false" is False)."""
    return _bool({key: value}, key, False)


def _read_credential_file(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        # Unreadable now: the TLS handshake will say so; the path still names the identity.
        return f"unreadable:{path}".encode()


def _check_encodable(field: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # Never show the character: it is part of the credential.
        raise OAuthCCConfigError(
            field, "contains a character that cannot be encoded (a lone surrogate?)"
        ) from None


def _api_base_url(url: str | None, allow_http: bool) -> str | None:
    """RFC 6750 §5.3: a bearer token travels only over TLS (loopback excepted)."""
    if not url:
        return None
    check_url(url, field="host", allow_insecure_http=allow_http, what="the access token")
    return url


def _token_url_key(extras: Mapping[str, Any]) -> str:
    """``auth_url``, or ``token_url`` when only that one is set (they are one setting)."""
    given = {key: extras[key] for key in TOKEN_URL_KEYS if key in extras}
    if len(set(map(str, given.values()))) > 1:
        raise OAuthCCConfigError(
            "token_url",
            "auth_url and token_url are two names for the token endpoint URL, and they "
            "differ: keep auth_url only",
        )
    return "token_url" if list(given) == ["token_url"] else "auth_url"


def _parse_extra(extra: Mapping[str, Any] | str | None) -> dict[str, Any]:
    if extra is None or extra == "":
        return {}
    if isinstance(extra, str):
        try:
            parsed = json.loads(extra)
        except json.JSONDecodeError as exc:
            raise OAuthCCConfigError(
                "extra", f"is not valid JSON (line {exc.lineno}, column {exc.colno})"
            ) from None
    else:
        parsed = extra
    if not isinstance(parsed, Mapping):
        raise OAuthCCConfigError("extra", 'must be a JSON object, e.g. {"auth_url": "..."}')
    # Empty form fields come through as "" or null: treat them as not set.
    return {str(k): v for k, v in parsed.items() if v is not None and v != ""}


def _str(extras: Mapping[str, Any], key: str) -> str | None:
    value = extras.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise OAuthCCConfigError(key, f"must be a string, got {type(value).__name__}")
    return value.strip() or None


def _choice(extras: Mapping[str, Any], key: str, choices: tuple[str, ...], default: str) -> str:
    value = _str(extras, key) or default
    if value not in choices:
        raise OAuthCCConfigError(
            key, f"unknown value {value!r}; choose one of: {', '.join(choices)}"
        )
    return value


def _bool(extras: Mapping[str, Any], key: str, default: bool) -> bool:
    value = extras.get(key, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise OAuthCCConfigError(key, "must be true or false")


def _url(extras: Mapping[str, Any], key: str, allow_http: bool) -> str | None:
    value = _str(extras, key)
    if value is None:
        return None
    check_url(value, field=key, allow_insecure_http=allow_http, what="the client credentials")
    return value


def parse_scope(extras: Mapping[str, Any]) -> str | None:
    """The ``scope`` in ``extras`` (string, comma/space separated, or list) as one string."""
    value = extras.get("scope")
    if value is None:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return " ".join(v.strip() for v in value if v.strip()) or None
    if isinstance(value, str):
        return " ".join(value.replace(",", " ").split()) or None
    raise OAuthCCConfigError("scope", "must be a space-separated string or a list of strings")


def parse_resources(extras: Mapping[str, Any]) -> tuple[str, ...]:
    """The ``resource`` in ``extras`` (one URI or a list) as a tuple."""
    value = extras.get("resource")
    if value is None:
        return ()
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) for v in values):
        raise OAuthCCConfigError("resource", "must be a URI string or a list of URI strings")
    return tuple(v.strip() for v in values if v.strip())


def _string_map(extras: Mapping[str, Any], key: str) -> dict[str, str]:
    value = extras.get(key)
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise OAuthCCConfigError(key, "must be a JSON object") from None
    if not isinstance(value, Mapping):
        raise OAuthCCConfigError(key, "must be a JSON object")
    result = {}
    for k, v in value.items():
        if not isinstance(v, str | int | float | bool):
            raise OAuthCCConfigError(key, f"value of {k!r} must be a string or number")
        result[str(k)] = str(v).lower() if isinstance(v, bool) else str(v)
    return result


def _request_params(extras: Mapping[str, Any]) -> dict[str, str]:
    params = _string_map(extras, "request_params")
    clash = sorted(set(params) & RESERVED_PARAMS)
    if clash:
        raise OAuthCCConfigError(
            "request_params",
            f"must not set {', '.join(clash)}: use the dedicated fields (scope, audience, "
            "resource, auth_method) instead",
        )
    return params


def _verify(extras: Mapping[str, Any]) -> bool | str:
    value = extras.get("verify", extras.get("verify_ssl", True))
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        _check_file("verify", value.strip())
        return value.strip()
    raise OAuthCCConfigError("verify", "must be true, false, or the path of a CA bundle file")


def _positive_number(extras: Mapping[str, Any], key: str, default: float) -> float:
    value = extras.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise OAuthCCConfigError(key, "must be a number of seconds") from None
    if isinstance(value, bool) or not number > 0 or number == float("inf"):
        raise OAuthCCConfigError(key, "must be a positive number of seconds")
    return number


# -- the request budget: rate_limit, rate_limit_burst, max_concurrency, rate_limit_learn ------


def _budget(extras: Mapping[str, Any]) -> BudgetSettings:
    burst = _positive_int(extras, "rate_limit_burst")
    text = extras.get("rate_limit")
    if text is not None and not isinstance(text, str):
        raise OAuthCCConfigError("rate_limit", "must be a string such as 10/s or 600/min")
    if burst is not None and text is None:
        raise OAuthCCConfigError("rate_limit_burst", "needs rate_limit (e.g. 10/s)")
    try:
        rate_limit = parse_rate_limit(text, burst) if text else None
    except ValueError as exc:
        raise OAuthCCConfigError("rate_limit", str(exc)) from None
    return BudgetSettings(
        rate_limit=rate_limit,
        max_concurrency=_positive_int(extras, "max_concurrency"),
        learn=_bool(extras, "rate_limit_learn", True),
    )


def _positive_int(extras: Mapping[str, Any], key: str) -> int | None:
    value = extras.get(key)
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OAuthCCConfigError(key, "must be a whole number of at least 1")
    return value


def _absolute_path(extras: Mapping[str, Any], key: str) -> str | None:
    value = _str(extras, key)
    if value is None:
        return None
    path = os.path.expanduser(value)
    if not os.path.isabs(path):
        # A task's working directory is not stable: a relative folder would split the cache.
        raise OAuthCCConfigError(key, f"must be an absolute path, got {value!r}")
    return path


def _check_file(key: str, path: str) -> None:
    if not os.path.isfile(path):
        raise OAuthCCConfigError(key, f"file not found: {path}")


def _check_private_key(pem: str | None, passphrase: str | None, algorithm: str | None) -> str:
    """Parse the key now, so a bad key fails before any network call; return the algorithm."""
    if not pem:
        raise OAuthCCConfigError(
            "private_key", "private_key_jwt needs a PEM private key (-----BEGIN PRIVATE KEY-----)"
        )
    key_type = private_key_type(pem, passphrase)
    allowed = _ALGORITHMS_BY_KEY_TYPE[key_type]
    if algorithm is None:
        return _default_algorithm(pem, passphrase) if key_type == "EC" else allowed[0]
    if algorithm not in allowed:
        raise OAuthCCConfigError(
            "signing_algorithm",
            f"{algorithm} does not fit a {key_type} key; use one of {', '.join(allowed)}",
        )
    return algorithm


def _default_algorithm(pem: str, passphrase: str | None) -> str:
    """ES256, ES384 or ES512, by the curve of an EC key (RFC 7518 §3.4)."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key: Any = load_pem_private_key(
        pem.encode(), password=passphrase.encode() if passphrase else None
    )
    return {256: "ES256", 384: "ES384", 521: "ES512"}.get(key.curve.key_size, "ES256")


def private_key_type(pem: str, passphrase: str | None = None) -> str:
    """Return the JWK key type ("RSA", "EC", "OKP") of a PEM private key."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(
            pem.encode(), password=passphrase.encode() if passphrase else None
        )
    except (ValueError, TypeError) as exc:
        # By the key's own header, not only by cryptography's message: a wrong passphrase
        # sometimes decrypts to bytes that merely fail to parse ("could not deserialize").
        encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----" in pem or "4,ENCRYPTED" in pem
        reason = (
            "wrong or missing passphrase"
            if encrypted or "password" in str(exc).lower()
            else "not a PEM private key"
        )
        raise OAuthCCConfigError("private_key", f"cannot be parsed ({reason})") from None
    except Exception:
        raise OAuthCCConfigError("private_key", "cannot be parsed (unsupported key)") from None
    if isinstance(key, rsa.RSAPrivateKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "EC"
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return "OKP"
    raise OAuthCCConfigError("private_key", "must be an RSA, EC or Ed25519 private key")
