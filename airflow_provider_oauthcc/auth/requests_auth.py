"""BearerAuth: a requests auth that adds the token and, on a 401, refreshes and replays once."""

from __future__ import annotations

import logging
import threading
from typing import Any

import requests
from requests.auth import AuthBase

from airflow_provider_oauthcc.auth import dpop
from airflow_provider_oauthcc.auth.egress import EgressPolicy, UnsafeUrlError, shown, target
from airflow_provider_oauthcc.auth.provider import TokenProvider
from airflow_provider_oauthcc.auth.token import Token

log = logging.getLogger(__name__)


class BearerAuth(AuthBase):
    """Sends ``Authorization: Bearer <token>`` to the API's own origin and nowhere else.

    Like ``requests.auth.HTTPDigestAuth.handle_401``: on a 401 the token is invalidated, a new
    one fetched and the request replayed once. A second 401 is returned to the caller.
    """

    def __init__(self, provider: TokenProvider, api: str | EgressPolicy | None = None) -> None:
        """``api``: the API's base URL, or the egress policy of the session it serves."""
        self.provider = provider
        insecure_ok = bool(getattr(provider.config, "allow_insecure_http", False))
        self.egress = (
            api
            if isinstance(api, EgressPolicy)
            else EgressPolicy(api, allow_insecure_http=insecure_ok)
        )
        self._local = threading.local()
        self._warned_hosts: set[str] = set()
        # The token of the last request, reused while fresh: a pull's pages cost no cache read
        # each. Its early refresh still happens on time, and a 401 drops it.
        self._held: tuple[Token, str] | None = None

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if not self._allowed(request.url or ""):
            return request
        token, header = self._token()
        request.headers["Authorization"] = header
        _add_proof(request, token)
        body_position = _body_position(request)
        origin = _origin(request.url or "")
        request.register_hook(  # type: ignore[no-untyped-call]
            "response",
            lambda response, **kwargs: self._handle_401(
                response, token, body_position, origin, **kwargs
            ),
        )
        return request

    def sign_redirect(self, request: requests.PreparedRequest) -> None:
        """A redirect hop requests built from a signed request: a new DPoP proof for the hop's
        URL while it carries the token, and none once requests has dropped the token."""
        if "DPoP" not in request.headers:
            return
        held = self._held
        if held is not None and request.headers.get("Authorization") == held[1]:
            _add_proof(request, held[0])
        else:
            del request.headers["DPoP"]

    def _token(self) -> tuple[Token, str]:
        held = self._held
        if held is None or not held[0].is_fresh():
            token = self.provider.get_token()
            held = self._held = (token, dpop.authorization(token))
        return held

    def _allowed(self, url: str) -> bool:
        if self.egress.carries_token(url):
            return True
        # RFC 6750 §5.3: a bearer token in clear can be replayed by whoever sees it.
        api = self.egress.api
        try:
            where = target(url)
            reason = (
                "it is plain http and not a loopback address"
                if api is None or where.origin == api.origin
                else f"it is not the connection's API origin {api.shown}"
            )
        except UnsafeUrlError as exc:
            reason = f"the URL {exc}"
        self._warn_once(shown(url), reason)
        return False

    def _warn_once(self, host: str, reason: str) -> None:
        if host not in self._warned_hosts:
            self._warned_hosts.add(host)
            log.warning("Not sending the OAuth token to %s: %s", host, reason)

    def _handle_401(
        self,
        response: requests.Response,
        token: Token,
        body_position: int | None,
        origin: str,
        **kwargs: Any,
    ) -> requests.Response:
        if token.dpop_jwk:
            dpop.NONCES.note(response.request.url or "", response.headers)
        if response.status_code != 401:
            return response
        if _origin(response.request.url or "") != origin:
            # A redirect took the request elsewhere (requests carries this hook along but
            # strips the token): that 401 is not about our token, and a replay would hand
            # the token to that host.
            return response
        if token.dpop_jwk and dpop.asks_for_nonce_at_api(401, response.headers):
            # The API wants a nonce in the proof: same token, a new proof, once.
            response = self._replay(response, token, body_position, **kwargs)
            dpop.NONCES.note(response.request.url or "", response.headers)
            if response.status_code != 401 or getattr(response, "oauthcc_not_replayed", None):
                return response
        # The rejected token is dropped either way, so the next request gets a fresh one.
        self._drop(token)
        self.provider.invalidate(token)
        if not _replayable(response.request, body_position):
            return _not_replayed(response)
        log.info("API answered 401; refreshing the OAuth token and replaying the request once")
        fresh, _ = self._token()
        return self._replay(response, fresh, body_position, **kwargs)

    def _replay(
        self,
        response: requests.Response,
        token: Token,
        body_position: int | None,
        **kwargs: Any,
    ) -> requests.Response:
        """``response``'s request sent once more with ``token`` (and a new DPoP proof)."""
        request = response.request.copy()
        if not _rewind(request, body_position):
            return _not_replayed(response)
        # Free the connection before reusing it for the replay.
        _ = response.content
        response.close()
        request.headers["Authorization"] = dpop.authorization(token)
        _add_proof(request, token)
        # Sent through the adapter, not the session: response hooks do not run again, so a
        # second 401 comes back to the caller instead of looping.
        connection: requests.adapters.BaseAdapter = response.connection
        replay = connection.send(request, **kwargs)
        replay.history.extend([*response.history, response])
        replay.request = request
        return replay

    def _drop(self, token: Token) -> None:
        held = self._held
        if held is not None and held[0] is token:
            self._held = None


def _add_proof(request: requests.PreparedRequest, token: Token) -> None:
    """A fresh DPoP proof for this request when the token is DPoP-bound."""
    proof = dpop.api_proof(token, request.method or "GET", request.url or "")
    if proof is not None:
        request.headers["DPoP"] = proof
    else:
        request.headers.pop("DPoP", None)


def _origin(url: str) -> str:
    try:
        return target(url).origin
    except UnsafeUrlError:
        return ""


def _body_position(request: requests.PreparedRequest) -> int | None:
    body = request.body
    if body is not None and hasattr(body, "tell"):
        try:
            return int(body.tell())
        except OSError:
            return None
    return None


def _not_replayed(response: requests.Response) -> requests.Response:
    response.oauthcc_not_replayed = (  # type: ignore[attr-defined]
        "its body is a stream that cannot be sent again (pass bytes or a seekable file)"
    )
    return response


def _replayable(request: requests.PreparedRequest, position: int | None) -> bool:
    body = request.body
    return (
        body is None
        or isinstance(body, str | bytes)
        or (position is not None and hasattr(body, "seek"))
    )


def _rewind(request: requests.PreparedRequest, position: int | None) -> bool:
    """Whether the body can be sent again (bytes can; a stream only if seekable)."""
    body = request.body
    if body is None or isinstance(body, str | bytes):
        return True
    if position is not None and hasattr(body, "seek"):
        body.seek(position)
        return True
    return False
