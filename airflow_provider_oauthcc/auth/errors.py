"""One exception family for everything that can go wrong; messages never contain a secret."""

from __future__ import annotations


class OAuthCCError(Exception):
    """Base class of every error raised by this provider."""


class OAuthCCConfigError(OAuthCCError, ValueError):
    """The connection is misconfigured; raised before any network call."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"OAuth connection field '{field}': {message}")


class TokenRequestError(OAuthCCError):
    """The token endpoint could not be reached, refused the request, or answered nonsense.

    Carries the RFC 6749 §5.2 ``error`` / ``error_description`` when the server sent them.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error: str | None = None,
        error_description: str | None = None,
        error_uri: str | None = None,
    ) -> None:
        self.status = status
        self.error = error
        self.error_description = error_description
        self.error_uri = error_uri
        super().__init__(message)


class TokenResponseError(TokenRequestError):
    """The token endpoint answered 2xx but the body is not a usable token response."""


class ApiError(OAuthCCError):
    """The protected API answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        error: str | None = None,
        error_description: str | None = None,
    ) -> None:
        self.status = status
        self.error = error
        self.error_description = error_description
        super().__init__(message)


class ApiUnauthorizedError(ApiError):
    """The API rejected a freshly fetched token too (401 after one refresh and replay)."""


class ApiConnectionError(OAuthCCError):
    """The protected API could not be reached, or did not answer in time (async path).

    ``request_sent`` is False when the connection failed before anything was sent, so the
    request can be retried whatever its method.
    """

    def __init__(self, message: str, *, request_sent: bool = True) -> None:
        self.request_sent = request_sent
        super().__init__(message)
