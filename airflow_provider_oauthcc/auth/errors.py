"""One exception family for everything that can go wrong; messages never contain a secret.

With Airflow installed, ``OAuthCCError`` is an ``AirflowException`` (so ``retry_args`` and
sensors' ``soft_fail`` / ``never_fail`` treat it as Airflow's own), and ``OAuthCCFailFast`` is
also an ``AirflowFailException``: a task that raises it fails without using up its retries,
because nothing but a change to the connection or the task can make it succeed. Without
Airflow (or when the core is imported before Airflow is) both are plain exceptions.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.sdk.exceptions import AirflowException as _AirflowException
    from airflow.sdk.exceptions import AirflowFailException as _AirflowFailException
else:

    def _airflow_bases() -> tuple[type[Exception], type[Exception]]:
        # Only an Airflow that is already imported: importing it from here would run its
        # provider discovery, which imports this package's provider info, and so this
        # half-imported module again. Airflow's processes always import Airflow first.
        if "airflow" not in sys.modules:
            return Exception, Exception
        try:  # Airflow 3.2+: the task SDK owns them
            from airflow.sdk.exceptions import AirflowException, AirflowFailException
        except ImportError:
            try:  # Airflow 2.11 to 3.1
                from airflow.exceptions import AirflowException, AirflowFailException
            except ImportError:
                return Exception, Exception
        return AirflowException, AirflowFailException

    _AirflowException, _AirflowFailException = _airflow_bases()


class OAuthCCError(_AirflowException):
    """Base class of every error raised by this provider."""


class OAuthCCFailFast(OAuthCCError, _AirflowFailException):
    """Cannot succeed without a change to the connection or the task: retrying is pointless.

    Airflow fails the task at once, whatever its ``retries``.
    """


class OAuthCCConfigError(OAuthCCFailFast, ValueError):
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


# RFC 6749 §5.2 errors that only a change to the connection can cure (wrong credential, a client
# not allowed this grant, a scope it may not have). Others (invalid_request from a flaky proxy,
# temporarily_unavailable, server_error) may pass on a retry.
CREDENTIAL_ERRORS = frozenset({"invalid_client", "unauthorized_client", "invalid_scope"})


class TokenRequestRejected(TokenRequestError, OAuthCCFailFast):
    """The token endpoint refused this client for good (``invalid_client``,
    ``unauthorized_client``, ``invalid_scope``): the task fails without retrying."""


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
    """The protected API could not be reached, did not answer in time (async path), or broke
    the connection while sending its answer (after the last retry).

    ``request_sent`` is False when the connection failed before anything was sent, so the
    request can be retried whatever its method.
    """

    def __init__(self, message: str, *, request_sent: bool = True) -> None:
        self.request_sent = request_sent
        super().__init__(message)


class ApiResponseTooLargeError(OAuthCCError):
    """An API answer is larger than the reader's cap (counted after decompression)."""

    def __init__(self, message: str, *, size: int = 0) -> None:
        super().__init__(message)
        self.size = size


class EmptyPullError(OAuthCCError):
    """A pull with ``fail_on_empty`` returned no record (retried as Airflow retries any
    failure: the data may not be there yet)."""


class OriginNotAllowedError(OAuthCCFailFast):
    """A request, next page or redirect would go where the egress gate allows nothing of the
    connection to go: another origin (not in ``allowed_origins``), plain http beyond loopback,
    or a URL that parsers read differently.

    Raised before anything is sent there.
    """

    def __init__(self, message: str, *, origin: str) -> None:
        self.origin = origin
        super().__init__(message)
