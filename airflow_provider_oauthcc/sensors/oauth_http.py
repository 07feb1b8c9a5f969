"""OAuthHttpSensor: HttpSensor for OAuth 2.0 client-credentials APIs, in poke and deferrable mode.

Importing this module costs what importing ``HttpSensor`` costs: the hook, the trigger and the
OAuth core are imported when the task runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.http.sensors.http import HttpSensor

from airflow_provider_oauthcc.airflow_compat import BaseSensorOperator, PokeReturnValue

if TYPE_CHECKING:
    import requests

    from airflow_provider_oauthcc.airflow_compat import Context

# The most of an answer a poke reads (decompressed); a larger one fails the poke.
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024

# Room for the trigger's own deadline event, which says more than Airflow's deferral timeout.
_DEFERRAL_GRACE = 60.0


class OAuthHttpSensor(HttpSensor):
    """Wait until an OAuth 2.0 protected endpoint answers as ``response_check`` says.

    Takes :class:`~airflow.providers.http.sensors.http.HttpSensor`'s arguments, with
    ``oauth_conn_id`` (an ``oauth2_client_credentials`` connection) in place of
    ``http_conn_id`` (accepted as another name for it). Each poke sends one request with the connection's token; a status in
    ``response_error_codes_allowlist`` (default ``["404"]``) means "not yet", another failed
    status raises ``ApiError``; without ``response_check`` any other answer ends the wait.
    With ``extra_options={"check_response": False}`` every answer goes to ``response_check``.
    ``response_check`` may return a ``PokeReturnValue`` to push an XCom value.

    With ``deferrable=True`` the task checks once, then waits in the triggerer, which polls
    every ``poke_interval`` seconds with its own token (fetched and refreshed there, through the
    connection's token cache). ``response_check`` runs in the task, not the triggerer: the
    trigger wakes the task when the answer's status or body differs from the last one the check
    rejected, so a job-status endpoint that says ``pending`` for an hour wakes it once per
    state, not once per poll. ``timeout`` counts from the first check; ``soft_fail`` applies.

    :param oauth_conn_id: the connection to call the API with. (templated)
    :param endpoint: path relative to the connection's host. (templated)
    :param request_params: query parameters for GET, the body otherwise. (templated)
    :param headers: extra request headers. (templated)
    :param scope: this task's token scope instead of the connection's; likewise ``audience``
        and ``resource`` (each distinct set is its own token; the triggerer uses them too).
    :param max_response_bytes: the most of an answer a poke reads, counted after
        decompression (default 64 MiB); a larger answer fails the poke with
        ``ApiResponseTooLargeError``. In deferrable mode the triggerer reads at most what a
        trigger event holds (256 KiB).
    """

    template_fields: Sequence[str] = ("endpoint", "request_params", "headers", "oauth_conn_id")
    ui_color = "#e8c07d"

    def __init__(
        self,
        *,
        endpoint: str,
        oauth_conn_id: str | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        scope: str | Sequence[str] | None = None,
        audience: str | None = None,
        resource: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        from airflow_provider_oauthcc.argument_aliases import conn_id_from_alias
        from airflow_provider_oauthcc.auth.token_params import TokenParams

        oauth_conn_id = conn_id_from_alias(oauth_conn_id, kwargs.pop("http_conn_id", None))
        if max_response_bytes < 1:
            raise ValueError("max_response_bytes must be >= 1")
        super().__init__(endpoint=endpoint, http_conn_id=oauth_conn_id, **kwargs)
        self.oauth_conn_id = oauth_conn_id
        self.max_response_bytes = max_response_bytes
        self.token_params = TokenParams.of(scope, audience, resource)

    def poke(self, context: Context) -> bool | PokeReturnValue:
        self.log.info("Poking: %s", self.endpoint)
        response = self._request()
        if response is None:
            return False
        return self._check(response, context)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return BaseSensorOperator.execute(self, context)
        deadline = time.time() + self.timeout
        done, seen = self._first_check(context)
        if done:
            return _xcom_value(done)
        self._defer(deadline, seen)

    def _first_check(self, context: Context) -> tuple[bool | PokeReturnValue, str | None]:
        """The check before deferring, and the digest of an answer it rejected.

        Its errors follow ``BaseSensorOperator.execute``'s rules for a poke, as in poke mode:
        ``soft_fail`` skips on a fail-fast error (``AirflowFailException``, a timeout),
        ``never_fail`` on any error, ``silent_fail`` logs it and defers.
        """
        from airflow_provider_oauthcc.airflow_compat import (
            AirflowFailException,
            AirflowSensorTimeout,
            AirflowSkipException,
            AirflowTaskTimeout,
        )

        self.log.info("Poking: %s", self.endpoint)
        try:
            response = self._request()
            if response is None:
                return False, None
            done = self._check(response, context)
            return done, None if done else _digest(response)
        except (AirflowSensorTimeout, AirflowTaskTimeout, AirflowFailException) as exc:
            if self.soft_fail:
                raise AirflowSkipException("Skipping due to soft_fail is set to True.") from exc
            if getattr(self, "never_fail", False):
                raise AirflowSkipException("Skipping due to never_fail is set to True.") from exc
            raise
        except AirflowSkipException:
            raise
        except Exception as exc:
            if getattr(self, "silent_fail", False):
                self.log.error("Sensor poke failed: %s", type(exc).__name__)
                return False, None
            if getattr(self, "never_fail", False):
                raise AirflowSkipException("Skipping due to never_fail is set to True.") from exc
            raise

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        from airflow_provider_oauthcc.airflow_compat import AirflowSensorTimeout
        from airflow_provider_oauthcc.triggers import events

        if not event:
            raise RuntimeError("OAuthHttpSensor resumed without a trigger event")
        if event["status"] == events.TIMEOUT:
            raise AirflowSensorTimeout(f"Sensor has timed out: {event['message']}")
        if event["status"] == events.ERROR:
            error = events.decode_error(event["error"])
            self.log.error("Polling %s failed in the triggerer", self.endpoint)
            raise error
        response = events.decode_response(event["response"])
        self.log.info("The triggerer saw a new answer from %s", self.endpoint)
        done = self._check(response, context)
        if done:
            self.log.info("Success criteria met. Exiting.")
            return _xcom_value(done)
        self._defer(float(event.get("deadline") or time.time() + self.timeout), _digest(response))

    def _request(self) -> requests.Response | None:
        """One request through the sync hook; None when its status means "not yet"."""
        import requests

        from airflow_provider_oauthcc.auth.http_read import read_into
        from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook

        hook = OAuthCCHook(
            method=self.method,
            oauth_conn_id=self.oauth_conn_id,
            **self.token_params.serialize(),
            tcp_keep_alive=self.tcp_keep_alive,
            tcp_keep_alive_idle=self.tcp_keep_alive_idle,
            tcp_keep_alive_count=self.tcp_keep_alive_count,
            tcp_keep_alive_interval=self.tcp_keep_alive_interval,
        )
        with hook.get_conn(self.headers, self.extra_options) as session:
            url = hook.url_from_endpoint(self.endpoint)
            method = self.method.upper()
            if method == "GET":
                request = requests.Request(
                    method, url, params=self.request_params, **self.request_kwargs
                )
            elif method == "HEAD":
                request = requests.Request(method, url, **self.request_kwargs)
            else:
                request = requests.Request(
                    method, url, data=self.request_params, **self.request_kwargs
                )
            # Statuses are judged here: a "not yet" is no error worth logging. The body is
            # streamed and read through the capped reader.
            options = {**hook.merged_extra, "check_response": False, "stream": True}
            session.stream = True  # what HttpHook reads, depending on its version
            response: requests.Response = hook.run_and_check(
                session, session.prepare_request(request), options
            )
            read_into(
                response,
                what=f"the answer of {self.endpoint}",
                limit=self.max_response_bytes,
                timeout=options.get("timeout"),
            )
        if not hook.merged_extra.get("check_response", True):
            return response  # as HttpSensor: response_check sees every status
        if str(response.status_code) in self.response_error_codes_allowlist:
            self.log.info("%s answered %d; not yet", self.endpoint, response.status_code)
            return None
        hook.check_response(response)
        return response

    def _check(self, response: requests.Response, context: Context) -> bool | PokeReturnValue:
        if self.response_check is None:
            return True
        from airflow_provider_oauthcc.airflow_compat import determine_kwargs

        kwargs = determine_kwargs(self.response_check, [response], context)
        result: bool | PokeReturnValue = self.response_check(response, **kwargs)
        return result

    def _defer(self, deadline: float, seen_digest: str | None) -> None:
        from airflow_provider_oauthcc.triggers.oauth_http import OAuthHttpSensorTrigger

        extra_kwargs = set(self.request_kwargs) - {"json"}
        if extra_kwargs:
            raise ValueError(
                f"request_kwargs {sorted(extra_kwargs)} cannot be sent from the triggerer; "
                "only json is (or run the sensor without deferrable=True)"
            )
        remaining = max(0.0, deadline - time.time())
        self.log.info(
            "Deferring: the triggerer polls %s every %g s (at most %d s more)",
            self.endpoint,
            self.poke_interval,
            remaining,
        )
        self.defer(
            trigger=OAuthHttpSensorTrigger(
                oauth_conn_id=self.oauth_conn_id,
                endpoint=self.endpoint,
                method=self.method,
                data=self.request_params,
                headers=self.headers,
                extra_options=self.extra_options,
                json=self.request_kwargs.get("json"),
                poke_interval=self.poke_interval,
                response_error_codes_allowlist=list(self.response_error_codes_allowlist),
                seen_digest=seen_digest,
                deadline=deadline,
                oauth_params=self.token_params.serialize(),
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=remaining + self.poke_interval + _DEFERRAL_GRACE),
        )


def _xcom_value(done: bool | PokeReturnValue) -> Any:
    return done.xcom_value if isinstance(done, PokeReturnValue) else None


def _digest(response: requests.Response) -> str:
    from airflow_provider_oauthcc.triggers.events import response_digest

    return response_digest(response)
