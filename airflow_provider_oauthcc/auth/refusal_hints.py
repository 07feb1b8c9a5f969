"""What to do about a token endpoint's refusal, added to its error: what was sent, what to change.

Only settings shown in clear in the connection (client ID, auth method, scope, audience,
resource) are named; never a secret.
"""

from __future__ import annotations

from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.errors import TokenRequestError

# The secret methods a client registered for one is most often mistaken for.
_OTHER_SECRET_METHOD = {
    "client_secret_basic": "client_secret_post",
    "client_secret_post": "client_secret_basic",
}


def refusal_hint(error: str | None, config: ClientConfig) -> str | None:
    """A sentence for the OAuth ``error`` code, or None when there is nothing to add."""
    if error == "invalid_client":
        return _invalid_client(config)
    if error == "invalid_scope":
        sent = f"scope {config.scope!r}" if config.scope else "no scope"
        return f"The request asked for {sent}; set the extra 'scope' to one this client may have"
    if error == "invalid_target":
        return (
            f"The request asked for {_target(config)}; set the extras 'resource' / 'audience' "
            "to what the API is registered as"
        )
    if error == "unauthorized_client":
        return (
            f"Client ID {config.client_id!r} is not allowed the client_credentials grant: "
            "enable it for this client (application) at the identity provider"
        )
    return None


def add_refusal_hint(exc: TokenRequestError, config: ClientConfig) -> None:
    """Append the hint for ``exc.error`` to the exception's message."""
    hint = refusal_hint(exc.error, config)
    if hint and exc.args and isinstance(exc.args[0], str):
        exc.args = (f"{exc.args[0]}. {hint}", *exc.args[1:])


def _invalid_client(config: ClientConfig) -> str:
    method = config.auth_method
    hint = f"Client ID {config.client_id!r}, auth method {method}: check the Client ID and "
    other = _OTHER_SECRET_METHOD.get(method)
    if other:
        return (
            hint + "the secret (Password). If both are right, the client may be registered "
            f"for {other}: set the extra 'auth_method' to '{other}'"
        )
    if method in ("client_secret_jwt", "private_key_jwt"):
        return hint + "the signing key registered for it (and 'key_id' if the server needs one)"
    return hint + "the client certificate registered for it"


def _target(config: ClientConfig) -> str:
    parts = []
    if config.resource:
        parts.append(f"resource {', '.join(config.resource)!r}")
    if config.audience:
        parts.append(f"audience {config.audience!r}")
    return " and ".join(parts) or "no resource and no audience"
