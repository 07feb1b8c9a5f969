"""TokenClient: requests a client-credentials token (RFC 6749 §4.4), with bounded retries."""

from __future__ import annotations

import email.utils
import random
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
import tenacity

from airflow_provider_oauthcc.auth import masking
from airflow_provider_oauthcc.auth.client_auth import ClientAuthenticator
from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.discovery import discover_token_endpoint
from airflow_provider_oauthcc.auth.errors import TokenRequestError
from airflow_provider_oauthcc.auth.tls import handshake_failure, warn_if_unverified
from airflow_provider_oauthcc.auth.token import Token, parse_token_response


class _RetryableTokenError(TokenRequestError):
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


class TokenClient:
    """Posts client-credentials token requests with the configured client authentication."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        max_attempts: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 60.0,
    ) -> None:
        self.config = config
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self._session = requests.Session()
        self._session.verify = config.verify
        warn_if_unverified(config.verify, config.token_url or config.issuer, "token endpoint")
        self._session.trust_env = True
        if config.proxies:
            self._session.proxies.update(config.proxies)
        if config.auth_method == "tls_client_auth" and config.client_cert:
            self._session.cert = (
                (config.client_cert, config.client_cert_key)
                if config.client_cert_key
                else config.client_cert
            )
        self._authenticator = ClientAuthenticator(config)
        masking.mask(*config.secrets)

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
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_RetryableTokenError),
            reraise=True,
        )
        try:
            token: Token = retrying(self._request_once, url)
        except _RetryableTokenError as exc:
            raise TokenRequestError(
                f"{exc} (gave up after {self.max_attempts} attempts)",
                status=exc.status,
                error=exc.error,
                error_description=exc.error_description,
                error_uri=exc.error_uri,
            ) from None
        masking.mask(token.access_token)
        return token

    def close(self) -> None:
        self._session.close()

    def _form(self) -> dict[str, Any]:
        config = self.config
        form: dict[str, Any] = {"grant_type": "client_credentials"}
        if config.scope:
            form["scope"] = config.scope
        if config.audience:
            form["audience"] = config.audience
        if config.resource:
            form["resource"] = list(config.resource)
        form.update(config.request_params)
        return form

    def _request_once(self, url: str) -> Token:
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        headers, body = self._authenticator.prepare(
            url, headers, urlencode(self._form(), doseq=True)
        )
        sent_at = time.time()
        try:
            response = self._session.post(
                url,
                data=body,
                headers=headers,
                timeout=self.config.timeout,
                allow_redirects=False,
                # Per request: a session's verify loses to REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE
                # (psf/requests#3829), which would ignore the connection's 'verify'.
                verify=self._session.verify,
            )
        except requests.exceptions.SSLError as exc:
            reason = handshake_failure(exc, has_client_cert=self._session.cert is not None)
            raise TokenRequestError(
                f"TLS handshake with the token endpoint {_origin(url)} failed: {reason}"
            ) from None
        except requests.exceptions.Timeout:
            raise _RetryableTokenError(
                TokenRequestError(
                    f"token endpoint {_origin(url)} did not answer within {self.config.timeout:g} s"
                )
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise _RetryableTokenError(
                TokenRequestError(
                    f"cannot reach the token endpoint {_origin(url)} ({_connection_reason(exc)})"
                )
            ) from None
        return self._handle_response(url, response, sent_at)

    def _handle_response(self, url: str, response: requests.Response, sent_at: float) -> Token:
        status = response.status_code
        if 300 <= status < 400:
            target = response.headers.get("Location", "")
            raise TokenRequestError(
                f"token endpoint {_origin(url)} redirected (HTTP {status}) to "
                f"{_origin(target) if target else 'nowhere'}; the credentials were not sent "
                "there. Set auth_url to the final token endpoint URL",
                status=status,
            )
        try:
            return parse_token_response(
                status=status,
                content_type=response.headers.get("Content-Type", ""),
                body=response.content,
                sent_at=sent_at,
                default_expires_in=self.config.default_expires_in,
                requested_scope=self.config.scope,
            )
        except TokenRequestError as exc:
            _scrub_secrets(exc, self.config.secrets)
            if status == 429 or status >= 500:
                raise _RetryableTokenError(exc, _retry_after(response)) from None
            raise

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _RetryableTokenError) and error.retry_after is not None:
            return min(error.retry_after, self.max_retry_after)
        exponential = self.backoff * 2 ** (state.attempt_number - 1)
        return float(min(self.max_backoff, exponential) * random.uniform(0.5, 1.0))


def _retry_after(response: requests.Response) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url[:100]


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


def _scrub_secrets(exc: TokenRequestError, secrets: tuple[str, ...]) -> None:
    """A server may echo what it was sent; make sure no secret rides out in our error."""

    def clean(text: str | None) -> str | None:
        if text is None:
            return None
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    exc.args = tuple(clean(a) if isinstance(a, str) else a for a in exc.args)
    exc.error_description = clean(exc.error_description)
    exc.error_uri = clean(exc.error_uri)
