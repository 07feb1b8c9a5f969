"""The ``oauth2_client_credentials`` connection form: data only, shared by provider info and hook."""

from __future__ import annotations

from typing import Any

from airflow_provider_oauthcc.auth.config import (
    AUTH_METHODS,
    CACHE_BACKENDS,
    DEFAULT_REDIS_CONN_ID,
    DPOP_ALGORITHMS,
)

# The port stays visible: Airflow 3.3.2's Test button answers "Bad Request" for a connection
# without one (the UI sends port 0 for "none"; fixed by apache/airflow#73298).
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema"],
    "relabeling": {
        "host": "API base URL",
        "port": "API port",
        "login": "Client ID",
        "password": "Client secret",
    },
    "placeholders": {
        "host": "https://api.example.com",
        "port": "optional, e.g. 443 (Airflow 3.3.2's Test button needs it)",
        "login": "the application's client ID",
        "password": "client secret (not needed for private_key_jwt / tls_client_auth / "
        "federated_assertion)",
        "auth_url": "https://idp.example.com/oauth/token",
        "issuer": "https://idp.example.com/realms/main",
        "scope": "read:orders write:orders",
        "audience": "https://api.example.com/",
        "request_params": '{"tenant": "acme"}',
        "headers": '{"Accept": "application/json"}',
        "cache_dir": "/var/cache/airflow/oauthcc-token-cache",
        "cache_redis_conn_id": "redis_default",
        "client_assertion_file": "/var/run/secrets/azure/tokens/azure-identity-token",
        "assertion_audience": "https://login.salesforce.com",
        "rate_limit": "10/s, 600/min or 5000/h",
    },
}


def _text(label: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "label": label,
        "description": description,
        "schema": {"type": ["string", "null"], **schema},
    }


CONN_FIELDS: dict[str, Any] = {
    "auth_url": _text(
        "Token endpoint URL",
        "Where the client gets its access tokens, e.g. https://TENANT.auth0.com/oauth/token "
        "(not the authorization URL a browser signs in at). Stored as the extra auth_url. "
        "Leave empty to discover it from the Issuer URL.",
        format="url",
    ),
    "issuer": _text(
        "Issuer URL",
        "The identity provider's issuer, e.g. https://sso.example.com/realms/data. Used when "
        "the token endpoint is empty: it is discovered from /.well-known/openid-configuration "
        "(or RFC 8414 metadata).",
        format="url",
    ),
    "auth_method": {
        "label": "Client authentication",
        "description": "How the client proves its identity at the token endpoint. With a client "
        "secret most providers accept HTTP Basic; with a certificate or key pair, private_key_jwt.",
        "schema": {
            "type": ["string", "null"],
            "enum": list(AUTH_METHODS),
            "default": AUTH_METHODS[0],
            "values_display": {
                "client_secret_basic": "Client secret, HTTP Basic (client_secret_basic)",
                "client_secret_post": "Client secret in the request body (client_secret_post)",
                "client_secret_jwt": "JWT signed with the client secret (client_secret_jwt)",
                "private_key_jwt": "JWT signed with a private key (private_key_jwt)",
                "tls_client_auth": "Mutual TLS client certificate (tls_client_auth)",
                "federated_assertion": "Workload identity: the platform's token file "
                "(federated_assertion)",
                "self_signed_tls_client_auth": "Mutual TLS, self-signed certificate "
                "(self_signed_tls_client_auth)",
            },
        },
    },
    "scope": _text(
        "Scope",
        "Space-separated scopes to request, e.g. 'read:orders' (Entra ID: "
        "'api://APP-ID/.default'). Empty: the client's default scopes.",
    ),
    "audience": _text(
        "Audience",
        "The API identifier, sent as 'audience', e.g. https://api.example.com/ (Auth0 needs it).",
    ),
    "resource": _text(
        "Resource", "RFC 8707 resource indicator URI, sent as 'resource' (ADFS, Entra ID v1)."
    ),
    "private_key": _text(
        "Private key (PEM)",
        "For private_key_jwt: the PEM private key (RSA, EC or Ed25519) that signs the client "
        "assertion; paste it whole, BEGIN and END lines included, or give the absolute path "
        "of the PEM file. For mutual TLS: the certificate's key, when not given as a file.",
        format="password",
    ),
    "private_key_passphrase": _text(
        "Private key passphrase", "Only if the PEM private key is encrypted.", format="password"
    ),
    "key_id": _text(
        "Key ID (kid)",
        "For private_key_jwt: the ID of the key as registered with the identity provider.",
    ),
    "signing_algorithm": {
        "label": "Signing algorithm",
        "description": "JWT assertion algorithm; by default RS256 for RSA keys, ES256 for EC keys, "
        "HS256 for client_secret_jwt.",
        "schema": {
            "type": ["string", "null"],
            "enum": [
                "RS256",
                "RS384",
                "RS512",
                "PS256",
                "PS384",
                "PS512",
                "ES256",
                "ES384",
                "ES512",
                "EdDSA",
                "HS256",
                "HS384",
                "HS512",
                None,
            ],
            "values_display": {"null": "Automatic (from the key type)"},
        },
    },
    "client_cert": _text(
        "Client certificate",
        "Path of a PEM certificate, or the PEM itself. Mutual TLS: the client certificate, "
        "presented to the token endpoint and to the API (certificate-bound tokens). "
        "private_key_jwt: the key's certificate, whose thumbprint goes in the assertion (Entra ID).",
    ),
    "client_cert_key": _text(
        "Client certificate key file",
        "For mutual TLS: path of the certificate's PEM key (or paste the key in Private key).",
    ),
    # Workload identity and the JWT-bearer grant.
    "client_assertion_file": _text(
        "Federated assertion file",
        "For federated_assertion (workload identity): the file the platform writes a signed JWT "
        "to and rotates, e.g. a Kubernetes projected service-account token. Read at every token "
        "request. Empty: the environment variable AZURE_FEDERATED_TOKEN_FILE (AKS).",
    ),
    "grant_type": {
        "label": "Grant",
        "description": "client_credentials (default), or the JWT-bearer grant (RFC 7523): an "
        "assertion signed with the Private key is the grant (Salesforce, Google service "
        "accounts).",
        "schema": {
            "type": ["string", "null"],
            "enum": ["client_credentials", "urn:ietf:params:oauth:grant-type:jwt-bearer"],
            "default": "client_credentials",
            "values_display": {
                "client_credentials": "Client credentials",
                "urn:ietf:params:oauth:grant-type:jwt-bearer": "JWT bearer (RFC 7523)",
            },
        },
    },
    "assertion_issuer": _text(
        "Assertion issuer (iss)", "JWT-bearer grant: the assertion's iss. Default: the Client ID."
    ),
    "assertion_subject": _text(
        "Assertion subject (sub)",
        "JWT-bearer grant: the user or account the token acts for (Salesforce: the username). "
        "Default: the Client ID.",
    ),
    "assertion_audience": _text(
        "Assertion audience (aud)",
        "JWT-bearer grant: the assertion's aud (Salesforce: https://login.salesforce.com). "
        "Default: the token endpoint URL.",
    ),
    "assertion_lifetime": {
        "label": "Assertion lifetime (s)",
        "description": "JWT-bearer grant: seconds until the assertion expires (exp). Default 300.",
        "schema": {"type": ["number", "null"], "default": 300, "minimum": 1},
    },
    # Sender-constrained tokens (RFC 9449).
    "dpop": {
        "label": "DPoP",
        "description": "Ask for DPoP-bound tokens (RFC 9449): each request carries a proof "
        "signed with a key pair the provider makes per token, so a leaked token is useless.",
        # A choice, not a boolean: every form (React, WTForms stand-ins, FAB) shows it alike.
        "schema": {
            "type": ["string", "null"],
            "enum": ["true", "false", None],
            "values_display": {"true": "On", "false": "Off", "null": "Off (default)"},
        },
    },
    "dpop_alg": {
        "label": "DPoP algorithm",
        "description": "The DPoP proof key's algorithm (default ES256).",
        "schema": {
            "type": ["string", "null"],
            "enum": [*DPOP_ALGORITHMS, None],
            "values_display": {"null": "ES256 (default)"},
        },
    },
    "request_params": _text(
        "Extra token request parameters",
        "JSON object of additional form parameters.",
        format="json",
    ),
    "headers": _text(
        "API headers", "JSON object of headers sent with every API request.", format="json"
    ),
    "verify": _text("TLS verification", "true (default), false, or the path of a CA bundle file."),
    "timeout": {
        "label": "Timeout (s)",
        "description": "Timeout of token and API requests, in seconds.",
        "schema": {"type": ["number", "null"], "default": 30, "minimum": 0},
    },
    "cache_backend": {
        "label": "Token cache",
        "description": "memory: one token per task process. file: shared by the task processes "
        "of a worker machine (encrypted files). redis: shared by every worker (encrypted, "
        "expires with the token). If a shared cache is unavailable, tokens are fetched directly.",
        "schema": {"type": ["string", "null"], "enum": list(CACHE_BACKENDS), "default": "memory"},
    },
    "cache_dir": _text(
        "Token cache folder",
        "For the file cache: an absolute path on each worker. Default: Airflow's "
        "[oauthcc] token_cache_dir setting, itself by default {AIRFLOW_HOME}/oauthcc-token-cache.",
    ),
    "cache_redis_conn_id": _text(
        "Token cache Redis connection",
        "For the redis cache: the ID of an Airflow Redis connection, used as the Redis provider "
        f"uses it (host, port, password, extras db, ssl, ssl_ca_certs ...). Default: "
        f"{DEFAULT_REDIS_CONN_ID}.",
    ),
    # The request budget this client shares at the API (docs/rate-limits.md).
    "rate_limit": _text(
        "Request rate limit",
        "Requests per period this client may send the API, all tasks together: 10/s, 600/min, "
        "5000/h. Shared through the token cache's Redis when the cache is redis, else per task "
        "process. Empty: no fixed limit (the API's rate-limit headers are still followed).",
    ),
    "rate_limit_burst": {
        "label": "Rate limit burst",
        "description": "How many requests may go at once before the rate applies. Default: 1.",
        "schema": {"type": ["integer", "null"], "minimum": 1},
    },
    "max_concurrency": {
        "label": "Max requests in flight",
        "description": "The most requests of this client in flight at once, all tasks together.",
        "schema": {"type": ["integer", "null"], "minimum": 1},
    },
    "rate_limit_learn": {
        "label": "Follow the API's rate-limit headers",
        "description": "true (default): RateLimit, X-RateLimit-* and Retry-After answers slow or "
        "pause every task sharing the budget until their reset; a 429 pauses them all.",
        "schema": {
            "type": ["string", "null"],
            "enum": ["true", "false", None],
            "values_display": {"null": "Default (true)"},
        },
    },
}
