"""The egress gate on every path, against hostile answers (issue 27).

A hostile API (a canned server) answers with a next link, a redirect or a huge body aimed at a
second local server on another port ("elsewhere") that records everything it receives. Every
path is tried: the hook, the operator's pull, the sensor, the deferrable operator's trigger
and the deferrable sensor's trigger. Nothing of the connection (token, ``headers`` extra, task
headers, request body) may reach elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from airflow_provider_oauthcc.auth.errors import (
    ApiError,
    ApiResponseTooLargeError,
    OAuthCCConfigError,
    OriginNotAllowedError,
    TokenRequestError,
)
from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook
from airflow_provider_oauthcc.hooks.oauth_cc_async import OAuthCCAsyncHook
from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
from airflow_provider_oauthcc.pull.pagination import NextUrlPaginator
from airflow_provider_oauthcc.sensors.oauth_http import OAuthHttpSensor
from airflow_provider_oauthcc.triggers import events
from airflow_provider_oauthcc.triggers.oauth_http import OAuthHttpSensorTrigger, OAuthHttpTrigger
from devserver import DevServer
from tests.support.canned_http import Canned, CannedServer
from tests.support.connections import airflow_conn, conn_json
from tests.support.http_proxy import HttpProxy

pytestmark = pytest.mark.integration

SECRET = "s3cret-Value-egress-4417"
CONN_HEADER = "conn-header-value-9071"
BODY_MARK = "body-mark-3302"
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def auth() -> Iterator[DevServer]:
    with DevServer() as srv:
        srv.add_client("app", secret=SECRET, scope="read")
        yield srv


@pytest.fixture
def api() -> Iterator[CannedServer]:
    server = CannedServer()
    yield server
    server.close()


@pytest.fixture
def elsewhere() -> Iterator[CannedServer]:
    server = CannedServer()
    server.default = Canned(200, json.dumps({"data": [{"id": "stolen"}], "next": None}), JSON)
    yield server
    server.close()


def connection(auth: DevServer, api: CannedServer, **extra: Any) -> str:
    extra.setdefault("auth_url", auth.token_url)
    extra.setdefault("scope", "read")
    extra.setdefault("headers", {"X-Conn-Key": CONN_HEADER})
    return conn_json(api.url, "app", SECRET, **extra)


@pytest.fixture
def conn(auth: DevServer, api: CannedServer) -> Iterator[str]:
    with airflow_conn("egress_api", connection(auth, api)):
        yield "egress_api"


def port(server: CannedServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def redirect_to(api: CannedServer, url: str, status: int = 307) -> None:
    api.add(Canned(status, "", {"Location": url}))


def run_trigger(trigger: Any) -> dict[str, Any]:
    async def first() -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("no event")

    return asyncio.run(asyncio.wait_for(first(), 60))


# -- 1. a next link two URL parsers read differently -----------------------------------------


def test_a_next_link_parsers_disagree_on_is_not_followed(
    conn: str, api: CannedServer, elsewhere: CannedServer
) -> None:
    """``http://localhost:E\\@127.0.0.1:A/`` is the API (127.0.0.1:A) to urlsplit, elsewhere
    (localhost:E) to urllib3, which requests connects with."""
    confused = f"http://localhost:{port(elsewhere)}\\@127.0.0.1:{port(api)}/items?page=2"
    api.add(Canned(200, json.dumps({"data": [{"id": 1}], "next": confused}), JSON))
    task = OAuthHttpOperator(
        task_id="pull",
        oauth_conn_id=conn,
        endpoint="/items",
        method="POST",
        data=json.dumps({"mark": BODY_MARK}),
        headers={"X-Task": "task-header"},
        paginate=NextUrlPaginator("next"),
        records_path="data",
    )
    with pytest.raises(OriginNotAllowedError, match="backslash"):
        task.execute({})
    assert elsewhere.requests == []
    assert len(api.requests) == 1


def test_the_triggerer_refuses_such_a_url_too(
    conn: str, api: CannedServer, elsewhere: CannedServer
) -> None:
    confused = f"http://localhost:{port(elsewhere)}\\@127.0.0.1:{port(api)}/items"
    event = run_trigger(OAuthHttpTrigger(conn, confused, headers={"X-Task": "t"}))
    assert event["status"] == events.ERROR
    assert event["error"]["type"] == "OriginNotAllowedError"
    assert "backslash" in event["error"]["message"]
    assert elsewhere.requests == [] and api.requests == []


# -- 2. redirects to another origin, on every path --------------------------------------------


def test_hook_run_post_redirected_elsewhere_sends_nothing_there(
    conn: str, api: CannedServer, elsewhere: CannedServer
) -> None:
    redirect_to(api, f"{elsewhere.url}/collect", 307)
    hook = OAuthCCHook(method="POST", oauth_conn_id=conn)
    with pytest.raises(OriginNotAllowedError, match=r"redirects to http://127\.0\.0\.1"):
        hook.run("/orders", data=BODY_MARK, headers={"X-Task": "task-header"})
    assert elsewhere.requests == []
    assert BODY_MARK.encode() in api.requests[0].body


@pytest.mark.parametrize("allow_redirects", ["false", False])
def test_hook_run_with_redirects_off_returns_the_redirect_unfollowed(
    auth: DevServer,
    api: CannedServer,
    elsewhere: CannedServer,
    allow_redirects: object,
) -> None:
    """``allow_redirects`` from the connection's extras, as text or as a boolean."""
    redirect_to(api, f"{elsewhere.url}/collect", 302)
    with airflow_conn("egress_noredir", connection(auth, api, allow_redirects=allow_redirects)):
        response = OAuthCCHook(oauth_conn_id="egress_noredir").run("/orders")
    assert response.status_code == 302
    assert elsewhere.requests == []


def test_sync_sensor_redirected_elsewhere_sends_nothing_there(
    conn: str, api: CannedServer, elsewhere: CannedServer
) -> None:
    redirect_to(api, f"{elsewhere.url}/status", 302)
    sensor = OAuthHttpSensor(
        task_id="wait", oauth_conn_id=conn, endpoint="/status", headers={"X-Task": "t"}
    )
    with pytest.raises(OriginNotAllowedError):
        sensor.poke({})  # type: ignore[arg-type]
    assert elsewhere.requests == []


@pytest.mark.parametrize("sensor", [False, True])
def test_triggers_redirected_elsewhere_send_nothing_there(
    conn: str, api: CannedServer, elsewhere: CannedServer, sensor: bool
) -> None:
    """The deferrable operator's first request and the deferrable sensor's polls."""
    redirect_to(api, f"{elsewhere.url}/collect", 307)
    kwargs: dict[str, Any] = {"method": "POST", "data": BODY_MARK, "headers": {"X-Task": "t"}}
    trigger = (
        OAuthHttpSensorTrigger(conn, "/orders", poke_interval=0.1, **kwargs)
        if sensor
        else OAuthHttpTrigger(conn, "/orders", **kwargs)
    )
    event = run_trigger(trigger)
    assert event["status"] == events.ERROR
    assert event["error"]["type"] == "OriginNotAllowedError"
    assert elsewhere.requests == []


@pytest.mark.parametrize("max_redirects", ["1", 1])
def test_the_trigger_honours_max_redirects_from_the_connection(
    auth: DevServer, api: CannedServer, max_redirects: object
) -> None:
    redirect_to(api, f"{api.url}/a", 307)
    redirect_to(api, f"{api.url}/b", 307)
    with airflow_conn("egress_maxredir", connection(auth, api, max_redirects=max_redirects)):
        event = run_trigger(OAuthHttpTrigger("egress_maxredir", "/start"))
    assert event["status"] == events.ERROR
    assert "more than 1 redirects" in event["error"]["message"]


def test_the_trigger_honours_allow_redirects_false_from_the_connection(
    auth: DevServer, api: CannedServer, elsewhere: CannedServer
) -> None:
    redirect_to(api, f"{elsewhere.url}/collect", 302)
    with airflow_conn("egress_trig_noredir", connection(auth, api, allow_redirects="false")):
        event = run_trigger(OAuthHttpTrigger("egress_trig_noredir", "/orders"))
    assert event["status"] == events.SUCCESS
    assert events.decode_response(event["response"]).status_code == 302
    assert elsewhere.requests == []


# -- 4. discovery: a token endpoint that only looks like https or loopback ---------------------


@pytest.mark.parametrize(
    "endpoint",
    [
        "HTTP://{host}/token",
        " http://{host}/token",
        "http://{host}\\@127.0.0.1:1/token",
        "http://localhost.{host}/token",
    ],
)
def test_a_discovered_endpoint_the_gate_refuses_gets_no_credentials(
    api: CannedServer, endpoint: str
) -> None:
    """The document names a plain-http endpoint on another host in a form a string check
    misses. The connection's proxy stands in for the network: it would carry the POST (and
    the Basic client secret) to that host; it must see nothing for it."""
    host = "evil.example"
    document = {"issuer": api.url, "token_endpoint": endpoint.format(host=host)}
    api.add(Canned(200, json.dumps(document), JSON))
    with HttpProxy() as proxy:
        value = conn_json(api.url, "app", SECRET, issuer=api.url, proxies={"http": proxy.url})
        with airflow_conn("egress_disc", value):
            hook = OAuthCCHook(oauth_conn_id="egress_disc")
            with pytest.raises((OAuthCCConfigError, TokenRequestError)) as info:
                hook.get_token()
        assert not any(host in target for target in proxy.targets())
    assert SECRET not in str(info.value)
    assert [r.method for r in api.requests] == ["GET"]  # the discovery document, nothing else


# -- 5. a huge or decompression-bomb answer ------------------------------------------------


def gzip_bomb(expanded: int) -> bytes:
    """``expanded`` zero bytes, gzip-compressed (about 1/1000 of the size)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1024 * 1024)
    parts = [compressor.compress(chunk) for _ in range(expanded // len(chunk))]
    return b"".join(parts) + compressor.flush()


BOMB_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, resource, sys
    import airflow  # noqa: F401  (as the triggerer imports it)
    from airflow_provider_oauthcc.triggers.oauth_http import OAuthHttpTrigger

    async def first(trigger):
        async for event in trigger.run():
            return dict(event.payload)

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    event = asyncio.run(first(OAuthHttpTrigger("egress_bomb", "/export")))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"status": event["status"], "growth_kib": after - before, "error": event.get("error")}))
    """
)


def test_a_gzip_bomb_does_not_take_the_triggerer_down(auth: DevServer, api: CannedServer) -> None:
    """510 kB on the wire, 512 MiB decompressed: the trigger stops reading at its event cap
    (counted after decompression) and hands the request back to the worker."""
    bomb = gzip_bomb(512 * 1024 * 1024)
    assert len(bomb) < 1024 * 1024
    api.add(Canned(200, bomb, {"Content-Encoding": "gzip", "Content-Type": "text/plain"}))
    env = {**os.environ, "AIRFLOW_CONN_EGRESS_BOMB": connection(auth, api)}
    done = subprocess.run(
        [sys.executable, "-c", BOMB_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # The trigger stops at its cap and hands the request back to the worker; aiohttp releases
    # before 3.14 may refuse the bomb first in their own decompressor (CVE-2025-69223's fix):
    # then the task gets the connection error instead. Either way the process survives.
    refused_by_aiohttp = (
        (result.get("error") or {}).get("message", "").endswith("(ClientPayloadError)")
    )
    assert result["status"] == events.TOO_LARGE or refused_by_aiohttp, result
    assert result["growth_kib"] < 128 * 1024, result  # far below the 512 MiB it expands to


def test_the_sync_sensor_reads_no_more_than_its_cap(conn: str, api: CannedServer) -> None:
    api.add(
        Canned(200, gzip_bomb(64 * 1024 * 1024), {"Content-Encoding": "gzip", **JSON}),
    )
    sensor = OAuthHttpSensor(
        task_id="wait", oauth_conn_id=conn, endpoint="/status", max_response_bytes=1024 * 1024
    )
    with pytest.raises(ApiResponseTooLargeError, match="too large"):
        sensor.poke({})  # type: ignore[arg-type]


# -- 7. server text is scrubbed on every path ---------------------------------------------


def test_a_token_endpoint_redirect_shows_only_the_origin(
    auth: DevServer, api: CannedServer, elsewhere: CannedServer
) -> None:
    """A Location can carry the secret (URL-encoded): the error names the origin only."""
    api.add(Canned(302, "", {"Location": f"/callback?client_secret={SECRET}&x=1"}))
    value = conn_json(api.url, "app", SECRET, auth_url=f"{api.url}/token")
    with (
        airflow_conn("egress_tokredir", value),
        pytest.raises(TokenRequestError, match="redirected") as info,
    ):
        OAuthCCHook(oauth_conn_id="egress_tokredir").get_token()
    assert SECRET not in str(info.value) and "callback" not in str(info.value)


def test_an_invalid_expires_in_echoing_the_secret_shows_none_of_it(api: CannedServer) -> None:
    body = {"access_token": "tok-1234567890", "token_type": "Bearer", "expires_in": SECRET}
    api.add(Canned(200, json.dumps(body), JSON))
    value = conn_json(api.url, "app", SECRET, auth_url=f"{api.url}/token")
    with (
        airflow_conn("egress_expires", value),
        pytest.raises(TokenRequestError, match="expires_in") as info,
    ):
        OAuthCCHook(oauth_conn_id="egress_expires").get_token()
    text = str(info.value)
    assert not any(SECRET[i : i + 6] in text for i in range(len(SECRET) - 5))


def test_the_async_hook_logs_failed_answers_scrubbed(
    conn: str,
    api: CannedServer,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    hook = OAuthCCAsyncHook(conn)

    async def call() -> str:
        token = (await (await hook.token_provider()).get_token()).access_token
        api.add(Canned(400, f"echo: secret={SECRET} token={token}", {}))
        async with await hook.session() as session:
            with pytest.raises(ApiError):
                await hook.run(session, "/orders")
        return token

    token = asyncio.run(call())
    logged = caplog.text + "".join(capsys.readouterr())
    assert "echo: secret=*** token=***" in logged
    assert SECRET not in logged and token not in logged


class EchoingApi:
    """An API that rejects every token and echoes it back, in WWW-Authenticate and the body."""

    def __init__(self) -> None:
        received = self.received = []  # type: list[str]

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                received.append(token)
                body = f"token {token} is revoked".encode()
                self.send_response(401)
                self.send_header(
                    "WWW-Authenticate",
                    f'Bearer error="invalid_token", error_description="token {token} is revoked"',
                )
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def test_a_trigger_error_event_never_stores_the_token(auth: DevServer) -> None:
    """The API echoes the token it rejected, on the first try and on the replay with a fresh
    one: the error event, stored in the metadata database, holds neither token."""
    echoing = EchoingApi()
    try:
        value = conn_json(echoing.url, "app", SECRET, auth_url=auth.token_url, scope="read")
        with airflow_conn("egress_echo", value):
            event = run_trigger(OAuthHttpTrigger("egress_echo", "/orders"))
    finally:
        echoing.close()
    assert event["status"] == events.ERROR
    assert len(set(echoing.received)) == 2  # the rejected token, then a fresh one
    stored = json.dumps(event)
    assert "is revoked" in stored
    assert not any(token in stored for token in echoing.received)
