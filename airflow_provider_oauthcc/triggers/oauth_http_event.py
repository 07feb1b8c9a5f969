"""OAuthHttpEventTrigger: watch an OAuth-protected endpoint for new data, for Airflow 3's
``AssetWatcher``.

    from airflow.sdk import Asset, AssetWatcher
    from airflow_provider_oauthcc.triggers.oauth_http_event import OAuthHttpEventTrigger

    changes = Asset(
        "https://api.example.com/v1/changes",
        watchers=[
            AssetWatcher(
                name="changes",
                trigger=OAuthHttpEventTrigger(
                    oauth_conn_id="crm", endpoint="/v1/changes",
                    cursor_param="since", cursor_path="next_cursor", records_path="records",
                    poll_interval=60,
                ),
            )
        ],
    )

It polls from the triggerer through the same async client, token cache, egress rules and
retries as the deferrable operator, and fires one event per batch of new data. An event
carries a small summary, never the token or the body: ``{"cursor_from", "cursor", "count",
"pages"}`` when watching a cursor, ``{"etag"}`` or ``{"digest"}`` when watching for a changed
answer, ``{"check": ...}`` with a response check.

How "new data" is decided:

* ``cursor_param`` + ``cursor_path`` (a change feed, ``since_id``, a delta link's token): the
  request carries the last cursor; records at ``records_path`` mean new data, and the body's
  ``cursor_path`` is the cursor after them. Pages are followed until one has no record (at most
  ``max_pages``), so one event covers the whole batch.
* ``response_check`` (an import path, ``"my_pkg.checks.has_new_rows"``): called with the
  ``requests.Response``; a truthy result fires an event (a dict result becomes ``check``).
* otherwise, a change of the answer: its ``ETag`` when the API sends one, else a digest of the
  body.

The cursor (or ETag, digest) announced last is stored durably (see
:mod:`~airflow_provider_oauthcc.triggers.watch_state`), so a triggerer restart resumes where the
watcher stopped: nothing announced again, nothing skipped. It is stored ``persist_delay``
seconds after the event was handed to the triggerer, once the triggerer has written the event
to its database; a triggerer killed within that moment announces the batch once more (a
duplicate the incremental operator recognises by its cursor), never loses it.

Failures (the API down, a refused token) are logged and retried with an exponential backoff
up to ``max_backoff`` seconds; the watcher keeps going. Needs Airflow 3.0 or newer.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from airflow_provider_oauthcc.airflow_compat import TriggerEvent

try:  # Airflow 3.0+
    from airflow.triggers.base import BaseEventTrigger
except ImportError:  # Airflow 2.x: no asset watchers; importing this module still works
    from airflow.triggers.base import BaseTrigger as BaseEventTrigger  # type: ignore[assignment]

    _HAS_WATCHERS = False
else:
    _HAS_WATCHERS = True

log = logging.getLogger(__name__)

DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_EVENT_BYTES = 4096
WATCH_STATE_SECTION = "oauthcc"
WATCH_STATE_OPTION = "watch_state_dir"


class OAuthHttpEventTrigger(BaseEventTrigger):
    """Polls an OAuth-protected endpoint from the triggerer; one event per batch of new data.

    :param oauth_conn_id: an ``oauth2_client_credentials`` connection.
    :param endpoint: path relative to the connection's host.
    :param cursor_param: the query parameter that carries the cursor (``since``).
    :param cursor_path: where the next cursor is in the JSON body (dotted: ``meta.next``).
    :param records_path: where the records are in the JSON body; None: the body is the list.
    :param start_cursor: the cursor of the first poll when none is stored (None: the API's
        default, often "from the beginning").
    :param response_check: import path of a callable taking the response; truthy: new data.
    :param data: other query parameters. :param headers: request headers.
    :param extra_options: ``timeout``, ``verify`` ... as for the operator.
    :param poll_interval: seconds between polls when nothing is new or after a batch.
    :param max_backoff: upper bound of the wait after consecutive failures.
    :param retries: retries of one request (429/5xx/lost connections, Retry-After honoured).
    :param max_pages: pages followed in one poll (cursor mode).
    :param max_response_bytes: the largest answer read (decompressed); a larger one is a
        failure (the triggerer is shared by every watcher).
    :param max_event_bytes: the largest event payload (JSON); a larger one is an error.
    :param state_key: names the stored state; by default a digest of the connection, endpoint,
        query and cursor settings (two watchers of the same feed share it).
    :param persist_delay: seconds between handing an event to the triggerer and storing the
        new cursor.
    :param scope: the watcher's own scope instead of the connection's (and ``audience``,
        ``resource``): one app registration may watch several APIs.
    """

    def __init__(
        self,
        oauth_conn_id: str,
        endpoint: str,
        *,
        cursor_param: str | None = None,
        cursor_path: str | None = None,
        records_path: str | None = None,
        start_cursor: str | None = None,
        response_check: str | None = None,
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        extra_options: dict[str, Any] | None = None,
        poll_interval: float = 60.0,
        max_backoff: float = 900.0,
        retries: int = 3,
        retry_max_wait: float = 60.0,
        max_pages: int = 100,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        state_key: str | None = None,
        persist_delay: float = 3.0,
        scope: str | list[str] | None = None,
        audience: str | None = None,
        resource: str | list[str] | None = None,
    ) -> None:
        if not _HAS_WATCHERS:
            raise RuntimeError(
                "OAuthHttpEventTrigger is for Airflow 3's AssetWatcher and needs Airflow 3.0 or "
                "newer; on Airflow 2 use OAuthHttpSensor (deferrable=True) in a scheduled DAG"
            )
        super().__init__()  # type: ignore[no-untyped-call]
        if (cursor_param is None) != (cursor_path is None):
            raise ValueError("give cursor_param and cursor_path together (or neither)")
        if cursor_param is not None and response_check is not None:
            raise ValueError("give either a cursor (cursor_param, cursor_path) or response_check")
        if poll_interval <= 0 or max_backoff < poll_interval:
            raise ValueError("poll_interval must be > 0 and max_backoff >= poll_interval")
        if max_pages < 1 or retries < 0 or max_response_bytes < 1 or max_event_bytes < 256:
            raise ValueError(
                "max_pages >= 1, retries >= 0, max_response_bytes >= 1, max_event_bytes >= 256"
            )
        self.oauth_conn_id = oauth_conn_id
        self.endpoint = endpoint
        self.cursor_param = cursor_param
        self.cursor_path = cursor_path
        self.records_path = records_path
        self.start_cursor = start_cursor
        self.response_check = response_check
        self.data = dict(data or {})
        self.headers = dict(headers or {})
        self.extra_options = dict(extra_options or {})
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.retries = retries
        self.retry_max_wait = retry_max_wait
        self.max_pages = max_pages
        self.max_response_bytes = max_response_bytes
        self.max_event_bytes = max_event_bytes
        from airflow_provider_oauthcc.auth.token_params import TokenParams

        self.oauth_params = TokenParams.of(scope, audience, resource).serialize()
        self.state_key = state_key or self._default_state_key()
        self.persist_delay = persist_delay

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", {
            "oauth_conn_id": self.oauth_conn_id,
            "endpoint": self.endpoint,
            "cursor_param": self.cursor_param,
            "cursor_path": self.cursor_path,
            "records_path": self.records_path,
            "start_cursor": self.start_cursor,
            "response_check": self.response_check,
            "data": self.data,
            "headers": self.headers,
            "extra_options": self.extra_options,
            "poll_interval": self.poll_interval,
            "max_backoff": self.max_backoff,
            "retries": self.retries,
            "retry_max_wait": self.retry_max_wait,
            "max_pages": self.max_pages,
            "max_response_bytes": self.max_response_bytes,
            "max_event_bytes": self.max_event_bytes,
            "state_key": self.state_key,
            "persist_delay": self.persist_delay,
            **self.oauth_params,
        }

    def _default_state_key(self) -> str:
        identity = [
            self.oauth_conn_id,
            self.endpoint,
            sorted((str(k), str(v)) for k, v in self.data.items()),
            self.cursor_param,
            self.cursor_path,
            self.records_path,
            self.response_check,
            self.oauth_params,
        ]
        return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:32]

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_oauthcc.hooks.oauth_cc_async import OAuthCCAsyncHook

        hook = OAuthCCAsyncHook(self.oauth_conn_id, "GET", **self.oauth_params)
        store = await self._store(hook)
        state = await asyncio.to_thread(store.load, self.state_key) or {}
        failures = 0
        async with await hook.session(self.extra_options) as session:
            while True:
                try:
                    payload, new_state = await self._poll(hook, session, state)
                except Exception as exc:
                    failures += 1
                    wait = min(self.max_backoff, self.poll_interval * 2 ** min(failures, 20))
                    self._log_failure(hook, exc, failures, wait)
                    await asyncio.sleep(wait)
                    continue
                failures = 0
                if payload is not None:
                    self._check_size(payload)
                    yield TriggerEvent(payload)  # type: ignore[no-untyped-call]
                    # Stored once the triggerer has written the event (see the module's doc).
                    await asyncio.sleep(self.persist_delay)
                    await asyncio.to_thread(store.save, self.state_key, new_state)
                    state = new_state
                    if payload.get("pages", 0) >= self.max_pages:
                        continue  # more is waiting: no pause
                await asyncio.sleep(self.poll_interval)

    async def _poll(
        self, hook: Any, session: Any, state: Mapping[str, Any]
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        if self.cursor_param is not None:
            return await self._poll_cursor(hook, session, state)
        response = await self._get(hook, session, self.data)
        if self.response_check is not None:
            result = _import_callable(self.response_check)(response)
            if not result:
                return None, dict(state)
            check = result if isinstance(result, dict | list | str | int | float) else True
            return {"check": check}, dict(state)
        etag = response.headers.get("ETag")
        marker = (
            {"etag": etag} if etag else {"digest": hashlib.sha256(response.content).hexdigest()}
        )
        if marker == {k: state.get(k) for k in marker}:
            return None, dict(state)
        return dict(marker), marker

    async def _poll_cursor(
        self, hook: Any, session: Any, state: Mapping[str, Any]
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        from airflow_provider_oauthcc.pull.pagination import json_get, select_records

        start = state.get("cursor", self.start_cursor)
        cursor, count, pages = start, 0, 0
        while pages < self.max_pages:
            data = dict(self.data)
            if cursor is not None:
                data[str(self.cursor_param)] = cursor
            body = _json_body(await self._get(hook, session, data))
            pages += 1
            records = select_records(body, self.records_path)
            if not records:
                break
            count += len(records)
            following = json_get(body, str(self.cursor_path))
            if following is None:
                log.warning(
                    "%s gave records but no cursor at %r: the next poll asks after %r again",
                    self.endpoint,
                    self.cursor_path,
                    cursor,
                )
                break
            if following == cursor:
                break
            cursor = following
        if count == 0:
            return None, dict(state)
        payload = {"cursor_from": start, "cursor": cursor, "count": count, "pages": pages}
        return payload, {"cursor": cursor}

    async def _get(self, hook: Any, session: Any, data: Mapping[str, Any]) -> Any:
        return await hook.run(
            session,
            self.endpoint,
            data=data,
            headers=self.headers,
            extra_options=self.extra_options,
            retries=self.retries,
            retry_max_wait=self.retry_max_wait,
            max_body=self.max_response_bytes,
        )

    async def _store(self, hook: Any) -> Any:
        from airflow_provider_oauthcc.triggers import watch_state

        provider = await hook.token_provider()
        config = provider.config
        if config.cache_backend == "redis":
            client = await asyncio.to_thread(await hook.redis_client_factory(config))
            return watch_state.RedisWatchState(client)
        return watch_state.FileWatchState(await asyncio.to_thread(_state_folder))

    def _check_size(self, payload: dict[str, Any]) -> None:
        size = len(json.dumps(payload))
        if size > self.max_event_bytes:
            raise ValueError(
                f"the event for {self.endpoint} is {size} bytes, more than max_event_bytes "
                f"({self.max_event_bytes}): a cursor this long belongs in a store, not an event"
            )

    def _log_failure(self, hook: Any, error: Exception, failures: int, wait: float) -> None:
        from airflow_provider_oauthcc.auth.errors import OAuthCCFailFast
        from airflow_provider_oauthcc.auth.redact import scrub

        reason = scrub(f"{type(error).__name__}: {error}", hook.secrets(), limit=500)
        level = logging.ERROR if isinstance(error, OAuthCCFailFast) else logging.WARNING
        self.log.log(
            level,
            "Watching %s failed (%d in a row): %s; polling again in %.0f s",
            self.endpoint,
            failures,
            reason,
            wait,
        )


def _state_folder() -> str:
    import os

    from airflow.configuration import AIRFLOW_HOME, conf

    default = os.path.join(AIRFLOW_HOME, "oauthcc-watch-state")
    folder = conf.get(WATCH_STATE_SECTION, WATCH_STATE_OPTION, fallback=None) or default
    return os.path.expanduser(folder)


def _json_body(response: Any) -> Any:
    from airflow_provider_oauthcc.pull.json_codec import loads

    try:
        return loads(response.content)
    except ValueError:
        raise ValueError(
            f"the answer is not JSON (HTTP {response.status_code}, "
            f"{response.headers.get('Content-Type', 'no content type')})"
        ) from None


def _import_callable(path: str) -> Callable[[Any], Any]:
    module, _, name = path.rpartition(".")
    if not module:
        raise ValueError(f"response_check must be an import path (pkg.module.function): {path!r}")
    function = getattr(importlib.import_module(module), name)
    if not callable(function):
        raise ValueError(f"response_check {path!r} is not callable")
    return function  # type: ignore[no-any-return]
