"""RequestOptions: the request settings of a connection and a task, parsed once into typed values.

A connection extra is text more often than not (``"false"``, ``"10"``), and a task's
``extra_options`` may be either. Both the requests path (workers) and the aiohttp path (the
triggerer) read these values, never the raw mapping, so ``"false"`` means false everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_oauthcc.auth.config import ClientConfig, as_flag
from airflow_provider_oauthcc.auth.errors import OAuthCCConfigError

DEFAULT_MAX_REDIRECTS = 30  # as requests

Timeout = float | tuple[float, float] | None
Cert = str | tuple[str, str] | None


@dataclass(frozen=True)
class RequestOptions:
    """How API requests are sent: ``timeout`` (s, or (connect, read)), ``verify`` (bool or CA
    bundle path), ``cert`` (client certificate path, or (cert, key)), ``stream``, ``trust_env``,
    ``allow_redirects``, ``max_redirects``, ``check_response``, per-request ``proxies``; and
    any other option the task passed, as given (``other``)."""

    timeout: Timeout
    verify: bool | str = True
    cert: Cert = None
    stream: bool = False
    trust_env: bool = True
    allow_redirects: bool = True
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    check_response: bool = True
    proxies: Mapping[str, str] = field(default_factory=dict)
    other: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(
        cls, config: ClientConfig, extra_options: Mapping[str, Any] | None = None
    ) -> RequestOptions:
        """The connection's settings (its extras) overridden by the task's ``extra_options``."""
        merged: dict[str, Any] = {**config.session_options, **(extra_options or {})}
        if "verify_ssl" in merged:
            merged.setdefault("verify", merged.pop("verify_ssl"))
        known = {
            "timeout",
            "verify",
            "cert",
            "stream",
            "trust_env",
            "allow_redirects",
            "max_redirects",
            "check_response",
            "proxies",
        }
        return cls(
            timeout=_timeout(merged.get("timeout", config.timeout)),
            verify=_verify(merged.get("verify", config.verify)),
            # With an mTLS method the API gets the client certificate too (RFC 8705 §3).
            cert=_cert(merged.get("cert", config.api_client_cert)),
            stream=as_flag("stream", merged.get("stream", False)),
            trust_env=as_flag("trust_env", merged.get("trust_env", True)),
            allow_redirects=as_flag("allow_redirects", merged.get("allow_redirects", True)),
            max_redirects=_count(
                "max_redirects", merged.get("max_redirects", DEFAULT_MAX_REDIRECTS)
            ),
            check_response=as_flag("check_response", merged.get("check_response", True)),
            proxies=_proxies(merged.get("proxies")),
            other={k: v for k, v in merged.items() if k not in known},
        )

    def as_extra(self) -> dict[str, Any]:
        """What ``HttpHook.run_and_check`` reads from ``extra_options``, typed."""
        extra: dict[str, Any] = {
            **self.other,
            "timeout": self.timeout,
            "verify": self.verify,
            "stream": self.stream,
            "trust_env": self.trust_env,
            "allow_redirects": self.allow_redirects,
            "max_redirects": self.max_redirects,
            "check_response": self.check_response,
        }
        if self.cert is not None:
            extra["cert"] = self.cert
        if self.proxies:
            extra["proxies"] = dict(self.proxies)
        return extra

    @property
    def cert_file_and_key(self) -> tuple[str | None, str | None]:
        if isinstance(self.cert, tuple):
            return self.cert
        return self.cert, None


def _timeout(value: Any) -> Timeout:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        if len(value) != 2:
            raise OAuthCCConfigError("timeout", "must be seconds, or [connect, read] seconds")
        connect, read = (_seconds(v) for v in value)
        return (connect, read)
    return _seconds(value)


def _seconds(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise OAuthCCConfigError("timeout", "must be a number of seconds") from None
    if isinstance(value, bool) or not 0 < number < float("inf"):
        raise OAuthCCConfigError("timeout", "must be a positive number of seconds")
    return number


def _verify(value: Any) -> bool | str:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false", "1", "0", "yes", "no"):
            return lowered in ("true", "1", "yes")
        if value.strip():
            return value.strip()
    raise OAuthCCConfigError("verify", "must be true, false, or the path of a CA bundle file")


def _cert(value: Any) -> Cert:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, str) for v in value)
    ):
        return (value[0], value[1])
    raise OAuthCCConfigError("cert", "must be a certificate file path, or [certificate, key]")


def _count(key: str, value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise OAuthCCConfigError(key, "must be a whole number") from None
    if isinstance(value, bool) or number < 0 or (isinstance(value, float) and value != number):
        raise OAuthCCConfigError(key, "must be a whole number, 0 or more")
    return number


def _proxies(value: Any) -> Mapping[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise OAuthCCConfigError("proxies", "must map a scheme to a proxy URL")
    return dict(value)
