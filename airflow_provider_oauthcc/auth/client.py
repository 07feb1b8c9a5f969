"""TokenClient: requests a client-credentials token (RFC 6749 §4.4), with bounded retries.

The transport-free parts (the form, reading the answer, the wait between attempts) are module
functions shared with the asyncio client (:mod:`~airflow_provider_oauthcc.auth.aio.client`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict, Unpack
from urllib.parse import urlencode, urljoin

import requests
import tenacity
import urllib3

from airflow_provider_oauthcc.auth import masking
from airflow_provider_oauthcc.auth.client_auth import ClientAuthenticator
from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.discovery import discover_token_endpoint
from airflow_provider_oauthcc.auth.egress import EgressPolicy, shown
from airflow_provider_oauthcc.auth.errors import TokenRequestError
from airflow_provider_oauthcc.auth.gated_session import GatedSession
from airflow_provider_oauthcc.auth.http_read import (
    ResponseTooSlowError,
    attempt_deadline,
    read_capped,
)
from airflow_provider_oauthcc.auth.rate_limit_headers import retry_after
from airflow_provider_oauthcc.auth.redact import scrub, secret_forms
from airflow_provider_oauthcc.auth.refusal_hints import add_refusal_hint
from airflow_provider_oauthcc.auth.tls import handshake_failure, warn_if_unverified
from airflow_provider_oauthcc.auth.token import Token, parse_token_response

if TYPE_CHECKING:
    from airflow_provider_oauthcc.auth.dpop import DPoPBinding


class RetryableTokenError(TokenRequestError):
    """A failure worth another try: unreachable, timed out, 429 or 5xx."""

    def __init__(self, error: TokenRequestError, retry_after: float | None = None) -> None:
        super().__init__(
            str(error),
            status=error.status,
            error=error.error,
            error_description=error.error_description,
            error_uri=error.error_uri,
        )
        self.retry_after = retry_after

    def gave_up(self, attempts: int, config: ClientConfig | None = None) -> TokenRequestError:
        """The error to raise once no attempt is left; when the endpoint was never reached
        (no HTTP status), it names the connection field to check."""
        fix = f"; {endpoint_field_hint(config)}" if config and self.status is None else ""
        return TokenRequestError(
            f"{self} (gave up after {attempts} attempts){fix}",
            status=self.status,
            error=self.error,
            error_description=self.error_description,
            error_uri=self.error_uri,
        )


DEFAULT_ATTEMPTS = 4
DEFAULT_BACKOFF = 0.5
DEFAULT_MAX_BACKOFF = 30.0
DEFAULT_MAX_RETRY_AFTER = 60.0


def fetch_budget(
    timeout: float,
    *,
    max_attempts: int = DEFAULT_ATTEMPTS,
    max_backoff: float = DEFAULT_MAX_BACKOFF,
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
) -> float:
    """The longest a token fetch with its retries can take: what a shared lock must outlive."""
    per_attempt = attempt_deadline(timeout) + timeout
    return max_attempts * per_attempt + (max_attempts - 1) * max(max_backoff, max_retry_after)


class RetryOptions(TypedDict, total=False):
    """Retry settings a token client takes as keyword arguments."""

    max_attempts: int
    backoff: float
    max_backoff: float
    max_retry_after: float


class RetryingTokenClient:
    """What the requests and the asyncio token clients share: the configuration, the retry
    settings (attributes, so a caller may tune them), the wait between attempts and the
    longest a fetch can take."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        max_attempts: int = DEFAULT_ATTEMPTS,
        backoff: float = DEFAULT_BACKOFF,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
    ) -> None:
        self.config = config
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self._authenticator = ClientAuthenticator(config)
        # The token endpoint and the issuer: any origin the connection names, over TLS.
        self.egress = EgressPolicy(None, allow_insecure_http=config.allow_insecure_http)
        warn_if_unverified(config.verify, config.token_url or config.issuer, "token endpoint")

    @property
    def max_duration(self) -> float:
        """The longest ``fetch_token`` can take, retries included."""
        return fetch_budget(
            self.config.timeout,
            max_attempts=self.max_attempts,
            max_backoff=self.max_backoff,
            max_retry_after=self.max_retry_after,
        )

    def _retry_settings(self) -> dict[str, Any]:
        """Keyword arguments for tenacity's Retrying / AsyncRetrying."""
        return {
            "stop": tenacity.stop_after_attempt(self.max_attempts),
            "wait": self._wait,
            "retry": tenacity.retry_if_exception_type(RetryableTokenError),
            "reraise": True,
        }

    def _wait(self, state: tenacity.RetryCallState) -> float:
        return retry_wait(
            state,
            backoff=self.backoff,
            max_backoff=self.max_backoff,
            max_retry_after=self.max_retry_after,
        )


class TokenClient(RetryingTokenClient):
    """Posts client-credentials token requests with the configured client authentication."""

    def __init__(self, config: ClientConfig, **retry: Unpack[RetryOptions]) -> None:
        super().__init__(config, **retry)
        self._session = GatedSession(self.egress)
        self._session.verify = config.verify
        self._session.trust_env = config.trust_env
        if config.proxies:
            self._session.proxies.update(config.proxies)
        if config.api_client_cert is not None:  # the mTLS client certificate
            self._session.cert = config.api_client_cert
        masking.mask(*config.secrets)
        self._dpop = dpop_binding(config)

    @property
    def token_url(self) -> str:
        if self.config.token_url:
            return self.config.token_url
        assert self.config.issuer is not None
        return discover_token_endpoint(
            self.config.issuer,
            self._session,
            timeout=self.config.timeout,
            allow_insecure_http=self.config.allow_insecure_http,
        )

    def fetch_token(self) -> Token:
        """Request a new token; retries transient failures, raises TokenRequestError otherwise."""
        url = self.token_url
        try:
            token: Token = tenacity.Retrying(**self._retry_settings())(self._request_once, url)
        except RetryableTokenError as exc:
            raise exc.gave_up(self.max_attempts, self.config) from None
        masking.mask_token(token.access_token, token.expires_at)
        return token

    def close(self) -> None:
        self._session.close()

    def _request_once(self, url: str) -> Token:
        # A DPoP server that asks for a nonce gets the request once more, with a new proof.
        for _ in range(2):
            sent_at, response, content = self._post(url)
            if not (
                self._dpop
                and self._dpop.retry_with_nonce(
                    url, response.status_code, response.headers, content
                )
            ):
                break
        token = token_from_answer(
            self.config,
            url,
            status=response.status_code,
            headers=response.headers,
            body=content,
            sent_at=sent_at,
            assertion=self._authenticator.last_assertion,
        )
        return sender_constrained(self.config, self._dpop, token)

    def _post(self, url: str) -> tuple[float, requests.Response, bytes]:
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        headers, body = self._authenticator.prepare(
            url, headers, urlencode(token_form(self.config), doseq=True)
        )
        if self._authenticator.last_assertion:
            masking.mask_token(
                self._authenticator.last_assertion, self._authenticator.last_assertion_expires
            )
        if self._dpop:
            headers["DPoP"] = self._dpop.token_request_proof(url)
        sent_at = time.time()
        deadline = time.monotonic() + attempt_deadline(self.config.timeout)
        try:
            response = self._session.post(
                url,
                data=body,
                headers=headers,
                timeout=self.config.timeout,
                allow_redirects=False,
                stream=True,
                # Per request: a session's verify loses to REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE
                # (psf/requests#3829), which would ignore the connection's 'verify'.
                verify=self._session.verify,
            )
            content = read_capped(response, what="the token endpoint's answer", deadline=deadline)
        except requests.exceptions.SSLError as exc:
            reason = handshake_failure(exc, has_client_cert=self._session.cert is not None)
            raise TokenRequestError(
                f"TLS handshake with the token endpoint {shown(url)} failed: {reason}"
            ) from None
        except (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError):
            raise RetryableTokenError(
                TokenRequestError(
                    f"token endpoint {shown(url)} did not answer within {self.config.timeout:g} s"
                )
            ) from None
        except ResponseTooSlowError as exc:
            raise RetryableTokenError(exc) from None
        except requests.exceptions.ConnectionError as exc:
            raise RetryableTokenError(
                TokenRequestError(
                    f"cannot reach the token endpoint {shown(url)} ({_connection_reason(exc)})"
                )
            ) from None
        except (urllib3.exceptions.HTTPError, OSError):
            raise RetryableTokenError(
                TokenRequestError(
                    f"the connection to the token endpoint {shown(url)} broke during the answer"
                )
            ) from None
        return sent_at, response, content


def dpop_binding(config: ClientConfig) -> DPoPBinding | None:
    """The DPoP key holder of a connection with DPoP on, else None."""
    if not config.dpop:
        return None
    from airflow_provider_oauthcc.auth.dpop import DPoPBinding

    return DPoPBinding(config.dpop_alg)


def sender_constrained(config: ClientConfig, dpop: DPoPBinding | None, token: Token) -> Token:
    """The token bound to the connection's DPoP key; a DPoP token without DPoP on is refused
    (it cannot be used without a proof), as is a Bearer token when DPoP was asked for."""
    if dpop is not None:
        return dpop.bind(token)
    if token.token_type != "Bearer":
        raise TokenRequestError(
            f"the token endpoint issued a {token.token_type} token: set the connection's "
            "extra dpop to true to use it"
        )
    return token


def token_form(config: ClientConfig) -> dict[str, Any]:
    """The grant's form fields (client authentication, and the JWT-bearer grant's assertion,
    not included)."""
    form: dict[str, Any] = {"grant_type": config.grant_type}
    if config.scope:
        form["scope"] = config.scope
    if config.audience:
        form["audience"] = config.audience
    if config.resource:
        form["resource"] = list(config.resource)
    form.update(config.request_params)
    return form


def token_from_answer(
    config: ClientConfig,
    url: str,
    *,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    sent_at: float,
    assertion: str | None = None,
) -> Token:
    """The token in a token-endpoint answer; raises RetryableTokenError for 429/5xx and
    TokenRequestError for anything else that is not a token. ``headers`` is case-insensitive.
    ``assertion``, the one the request carried (if any), is scrubbed like the secrets."""
    if 300 <= status < 400:
        target = headers.get("Location", "")
        # The origin only: a Location can carry anything, the secret URL-encoded included.
        raise TokenRequestError(
            f"token endpoint {shown(url)} redirected (HTTP {status}) to "
            f"{shown(urljoin(url, target)) if target else 'nowhere'}; the credentials were not "
            f"sent there. Set {config.token_url_key} to the final token endpoint URL",
            status=status,
        )
    forms = config.secret_forms
    if assertion:
        # Its payload and signature too: either alone is what a server may quote.
        sent = secret_forms([assertion, *assertion.split(".")[1:]])
        forms = tuple(sorted({*forms, *sent}, key=len, reverse=True))
    if not 200 <= status < 300:
        # Scrubbed before parsing, so that nothing later can cut a secret in two.
        body = scrub(body.decode("utf-8", "replace"), forms, limit=None).encode()
    try:
        return parse_token_response(
            status=status,
            content_type=headers.get("Content-Type", ""),
            body=body,
            sent_at=sent_at,
            default_expires_in=config.default_expires_in,
            requested_scope=config.scope,
        )
    except TokenRequestError as exc:
        add_refusal_hint(exc, config)
        _scrub_secrets(exc, forms)
        if status == 429 or status >= 500:
            raise RetryableTokenError(exc, retry_after(headers.get("Retry-After"))) from None
        raise


def endpoint_field_hint(config: ClientConfig) -> str:
    """Which connection field sets the token endpoint, for 'cannot reach' messages."""
    if config.token_url:
        return f"check the connection's extra '{config.token_url_key}' (the token endpoint URL)"
    return (
        "check the connection's extra 'issuer' (its discovery document names this token "
        "endpoint), or set 'auth_url' to the token endpoint URL"
    )


def retry_wait(
    state: tenacity.RetryCallState, *, backoff: float, max_backoff: float, max_retry_after: float
) -> float:
    """Seconds before the next attempt: the server's Retry-After (bounded), else jittered backoff."""
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, RetryableTokenError) and error.retry_after is not None:
        return min(error.retry_after, max_retry_after)
    exponential = backoff * 2 ** (state.attempt_number - 1)
    return float(min(max_backoff, exponential) * random.uniform(0.5, 1.0))


def _connection_reason(exc: requests.exceptions.ConnectionError) -> str:
    text = str(exc)
    for marker in (
        "Connection refused",
        "Name or service not known",
        "nodename nor servname",
        "Temporary failure in name resolution",
        "Connection reset",
        "timed out",
        "Remote end closed connection",
    ):
        if marker in text:
            return marker.lower()
    return type(exc).__name__


def _scrub_secrets(exc: TokenRequestError, forms: tuple[str, ...]) -> None:
    """A server may echo what it was sent; make sure no secret rides out in our error."""

    def clean(text: str | None) -> str | None:
        return None if text is None else scrub(text, forms, limit=None)

    exc.args = tuple(clean(a) if isinstance(a, str) else a for a in exc.args)
    exc.error_description = clean(exc.error_description)
    exc.error_uri = clean(exc.error_uri)
