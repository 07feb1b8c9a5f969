"""Triggers that call an OAuth 2.0 client-credentials protected API from the triggerer.

``OAuthHttpTrigger`` sends one request and hands the answer back to the task;
``OAuthHttpSensorTrigger`` polls an endpoint until its answer is worth showing to the task.

Their serialized form (what the metadata database stores) is the connection ID and the
request: endpoint, method, data, headers, extra options. Tokens are fetched in the triggerer
from the connection, through the same token cache as the workers' hooks, and refreshed as they
expire, however long the task stays deferred.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import requests

from airflow_provider_oauthcc.airflow_compat import BaseTrigger, TriggerEvent
from airflow_provider_oauthcc.auth.token_params import TokenParams
from airflow_provider_oauthcc.hooks.oauth_cc import api_error
from airflow_provider_oauthcc.hooks.oauth_cc_async import OAuthCCAsyncHook
from airflow_provider_oauthcc.pull.retry import IDEMPOTENT_METHODS
from airflow_provider_oauthcc.triggers import events


class OAuthHttpTrigger(BaseTrigger):
    """Sends one request with OAuth in the triggerer; fires one event.

    The event is ``{"status": "success", "response": {...}}`` (see :mod:`.events`) or
    ``{"status": "error", "error": {...}}`` naming the provider exception to raise in the task.

    :param oauth_conn_id: an ``oauth2_client_credentials`` connection.
    :param endpoint: path relative to the connection's host, or an absolute URL on it.
    :param method: HTTP method.
    :param data: query parameters for GET, the body otherwise (as ``HttpHook.run``).
    :param headers: request headers (the connection's ``headers`` extra is added in the
        triggerer, the token too).
    :param extra_options: ``timeout``, ``verify``, ``allow_redirects``, ``check_response`` ...
    :param json: a JSON body.
    :param retries: retries of the request after its first attempt (429, 5xx, lost connections,
        as the sync operator retries a page).
    :param retry_max_wait: upper bound in seconds of any wait between retries.
    :param oauth_params: the task's ``scope`` / ``audience`` / ``resource`` instead of the
        connection's, so that the triggerer fetches the token the task would.
    """

    def __init__(
        self,
        oauth_conn_id: str,
        endpoint: str | None = None,
        method: str = "GET",
        data: dict[str, Any] | str | None = None,
        headers: dict[str, str] | None = None,
        extra_options: dict[str, Any] | None = None,
        json: Any = None,
        retries: int = 0,
        retry_max_wait: float = 60.0,
        oauth_params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.oauth_conn_id = oauth_conn_id
        self.endpoint = endpoint
        self.method = method.upper()
        self.data = data
        self.headers = dict(headers or {})
        self.extra_options = dict(extra_options or {})
        self.json = json
        self.retries = retries
        self.retry_max_wait = retry_max_wait
        self.oauth_params = TokenParams.from_serialized(oauth_params).serialize()

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", self._request_kwargs()

    def _request_kwargs(self) -> dict[str, Any]:
        return {
            "oauth_conn_id": self.oauth_conn_id,
            "endpoint": self.endpoint,
            "method": self.method,
            "data": self.data,
            "headers": self.headers,
            "extra_options": self.extra_options,
            "json": self.json,
            "retries": self.retries,
            "retry_max_wait": self.retry_max_wait,
            "oauth_params": self.oauth_params,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = OAuthCCAsyncHook(self.oauth_conn_id, self.method, **self.oauth_params)
        try:
            async with await hook.session(self.extra_options) as session:
                response = await self._call(hook, session, retries=self.retries)
            event = {"status": events.SUCCESS, "response": events.encode_response(response)}
        except events.ResponseTooLargeError as exc:
            event = self._too_large_event(hook, exc)
        except Exception as exc:
            event = self._error_event(hook, exc)
        yield TriggerEvent(event)  # type: ignore[no-untyped-call]

    async def _call(
        self, hook: OAuthCCAsyncHook, session: aiohttp.ClientSession, *, retries: int
    ) -> requests.Response:
        return await hook.run(
            session,
            self.endpoint,
            data=self.data,
            headers=self.headers,
            extra_options=self.extra_options,
            json=self.json,
            retries=retries,
            retry_max_wait=self.retry_max_wait,
            # Read no more than an event can hold: the triggerer is shared by every deferred
            # task, and one huge (or decompression-bomb) answer must not take it down.
            max_body=events.MAX_EVENT_BODY,
        )

    def _too_large_event(
        self, hook: OAuthCCAsyncHook, error: events.ResponseTooLargeError
    ) -> dict[str, Any]:
        if self.method not in IDEMPOTENT_METHODS:
            # The request reached the API: the worker must not send it again.
            return self._error_event(hook, events.too_large_error(error.size, exact=False))
        self.log.info(
            "%s answered more than the %d bytes a trigger event holds: the task sends the "
            "request again from the worker",
            self.endpoint or "/",
            events.MAX_EVENT_BODY,
        )
        return events.too_large_event(error)

    def _error_event(self, hook: OAuthCCAsyncHook, error: Exception) -> dict[str, Any]:
        secrets = hook.secrets()
        event: dict[str, Any] = {
            "status": events.ERROR,
            "error": events.encode_error(error, secrets),
        }
        self.log.error(
            "%s %s failed in the triggerer: %s",
            self.method,
            self.endpoint or "/",
            event["error"]["message"],
        )
        return event


class OAuthHttpSensorTrigger(OAuthHttpTrigger):
    """Polls an endpoint every ``poke_interval`` seconds; fires when its answer is one the task
    has not seen yet.

    An answer with a status in ``response_error_codes_allowlist`` means "not yet". Any other
    answer fires ``{"status": "success", "response": ...}``, unless its status and body are the
    ones the task last rejected (``seen_digest``): then polling goes on without waking the task.
    Past ``deadline`` (epoch seconds) it fires ``{"status": "timeout"}``; a failed request
    fires an error event. Every event carries ``deadline`` back to the task.
    """

    def __init__(
        self,
        oauth_conn_id: str,
        endpoint: str | None = None,
        method: str = "GET",
        data: dict[str, Any] | str | None = None,
        headers: dict[str, str] | None = None,
        extra_options: dict[str, Any] | None = None,
        json: Any = None,
        retries: int = 0,
        retry_max_wait: float = 60.0,
        poke_interval: float = 60.0,
        response_error_codes_allowlist: list[str] | None = None,
        seen_digest: str | None = None,
        deadline: float | None = None,
        oauth_params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            oauth_conn_id,
            endpoint,
            method,
            data,
            headers,
            extra_options,
            json,
            retries,
            retry_max_wait,
            oauth_params,
        )
        self.poke_interval = poke_interval
        self.response_error_codes_allowlist = list(
            ["404"] if response_error_codes_allowlist is None else response_error_codes_allowlist
        )
        self.seen_digest = seen_digest
        self.deadline = deadline

    def _request_kwargs(self) -> dict[str, Any]:
        return {
            **super()._request_kwargs(),
            "poke_interval": self.poke_interval,
            "response_error_codes_allowlist": self.response_error_codes_allowlist,
            "seen_digest": self.seen_digest,
            "deadline": self.deadline,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = OAuthCCAsyncHook(self.oauth_conn_id, self.method, **self.oauth_params)
        try:
            async with await hook.session(self.extra_options) as session:
                event = await self._poll(hook, session)
        except Exception as exc:
            event = self._error_event(hook, exc)
        yield TriggerEvent({**event, "deadline": self.deadline})  # type: ignore[no-untyped-call]

    async def _poll(self, hook: OAuthCCAsyncHook, session: aiohttp.ClientSession) -> dict[str, Any]:
        polls = 0
        while True:
            if self.deadline is not None and time.time() >= self.deadline:
                return {
                    "status": events.TIMEOUT,
                    "message": f"{self.endpoint or '/'} did not answer as expected before the "
                    f"sensor's timeout ({polls} polls in the triggerer)",
                }
            polls += 1
            response = await self._poke(hook, session)
            if response is not None:
                if events.response_digest(response) != self.seen_digest:
                    return {"status": events.SUCCESS, "response": events.encode_response(response)}
                self.log.debug(
                    "Same answer as last time (HTTP %d); polling on", response.status_code
                )
            await asyncio.sleep(self._next_sleep())

    async def _poke(
        self, hook: OAuthCCAsyncHook, session: aiohttp.ClientSession
    ) -> requests.Response | None:
        """The answer, or None when its status says "not yet"."""
        response = await hook.run(
            session,
            self.endpoint,
            data=self.data,
            headers=self.headers,
            # Statuses are judged here: a "not yet" is no error worth logging.
            extra_options={**self.extra_options, "check_response": False},
            json=self.json,
            retries=self.retries,
            retry_max_wait=self.retry_max_wait,
            max_body=events.MAX_EVENT_BODY,
        )
        if not (await hook.request_options(self.extra_options)).check_response:
            return response  # as HttpSensor: the task's response_check sees every status
        if str(response.status_code) in self.response_error_codes_allowlist:
            self.log.info("%s answered %d; polling on", self.endpoint or "/", response.status_code)
            return None
        if not response.ok:
            raise api_error(response)
        return response

    def _next_sleep(self) -> float:
        if self.deadline is None:
            return self.poke_interval
        return max(0.0, min(self.poke_interval, self.deadline - time.time()))
