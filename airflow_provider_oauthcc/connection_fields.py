"""The ``oauth2_client_credentials`` connection form: data only, shared by provider info and hook."""

from __future__ import annotations

from typing import Any

from airflow_provider_oauthcc.auth.config import AUTH_METHODS, CACHE_BACKENDS

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port"],
    "relabeling": {
        "host": "API base URL",
        "login": "Client ID",
        "password": "Client secret",
    },
    "placeholders": {
        "host": "https://api.example.com",
        "login": "the application's client ID",
        "password": "client secret (not needed for private_key_jwt / tls_client_auth)",
        "auth_url": "https://idp.example.com/oauth/token",
        "issuer": "https://idp.example.com/realms/main",
        "scope": "read:orders write:orders",
        "audience": "https://api.example.com/",
        "request_params": '{"tenant": "acme"}',
        "headers": '{"Accept": "application/json"}',
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
        "Where tokens are requested, e.g. https://tenant.auth0.com/oauth/token. "
        "Leave empty to discover it from the issuer.",
        format="url",
    ),
    "issuer": _text(
        "Issuer URL",
        "The authorization server's issuer; its token endpoint is discovered from "
        "/.well-known/openid-configuration (or RFC 8414 metadata). Used when no token endpoint is set.",
        format="url",
    ),
    "auth_method": {
        "label": "Client authentication",
        "description": "How the client proves its identity at the token endpoint.",
        "schema": {
            "type": ["string", "null"],
            "enum": list(AUTH_METHODS),
            "default": AUTH_METHODS[0],
        },
    },
    "scope": _text("Scope", "Space-separated scopes to request, e.g. 'read:orders'."),
    "audience": _text(
        "Audience", "The API identifier, sent as 'audience' (Auth0, Okta custom APIs)."
    ),
    "resource": _text(
        "Resource", "RFC 8707 resource indicator URI, sent as 'resource' (ADFS, Entra v1)."
    ),
    "private_key": _text(
        "Private key (PEM)",
        "For private_key_jwt: the PEM private key that signs the client assertion.",
        format="password",
    ),
    "private_key_passphrase": _text(
        "Private key passphrase", "Only if the PEM private key is encrypted.", format="password"
    ),
    "key_id": _text("Key ID (kid)", "The key ID registered with the authorization server."),
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
        },
    },
    "client_cert": _text(
        "Client certificate file", "For tls_client_auth (mTLS): path of the PEM certificate."
    ),
    "client_cert_key": _text(
        "Client certificate key file", "For tls_client_auth: path of its PEM key."
    ),
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
        "description": "memory: one token per task process.",
        "schema": {"type": ["string", "null"], "enum": list(CACHE_BACKENDS), "default": "memory"},
    },
}
