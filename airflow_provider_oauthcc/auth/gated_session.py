"""GatedSession: a ``requests.Session`` whose every send passes the egress gate.

``Session.send`` is the one door of requests: direct requests, every redirect hop and every
401 replay go through it. Here each URL is judged (:mod:`.egress`) before it is sent, a loopback
address is reached without a proxy, and a redirect to another origin stops before anything of
the request (headers, body, client certificate) is sent there. Requests to the API's origin
wait for its request budget (:mod:`.rate_limit`), and their answers teach it.
"""

from __future__ import annotations

import weakref
from typing import Any

import requests

from airflow_provider_oauthcc.auth.egress import EgressPolicy, Target
from airflow_provider_oauthcc.auth.errors import OriginNotAllowedError
from airflow_provider_oauthcc.auth.rate_limit import RequestBudget


class AllowedOriginRedirect(OriginNotAllowedError):
    """A redirect to an origin in ``allowed_origins``: not followed with the request; a pull
    fetches ``url`` (with ``method``) from there with the URL only."""

    def __init__(self, message: str, *, origin: str, url: str, method: str) -> None:
        super().__init__(message, origin=origin)
        self.url = url
        self.method = method


class GatedSession(requests.Session):
    """A session for one connection's requests, judged by ``egress``.

    Its ``verify`` is the connection's whatever the environment says: requests lets
    REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's ``verify`` (psf/requests#3829), so a
    CA bundle or ``false`` set on the connection would be ignored on machines that export one.
    Only a ``verify`` given for one request wins over the session's.
    """

    def __init__(self, egress: EgressPolicy, budget: RequestBudget | None = None) -> None:
        super().__init__()
        self.egress = egress
        # The request budget of the API's origin (requests elsewhere do not count against it).
        self.budget = budget
        # Redirect hops requests has built, with the URL that redirected to each.
        self._hops: weakref.WeakKeyDictionary[requests.PreparedRequest, str] = (
            weakref.WeakKeyDictionary()
        )

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = request.url or ""
        from_url = self._hops.pop(request, None)
        where = self.egress.request(url) if from_url is None else self._redirect(from_url, request)
        if where.goes_direct(allow_insecure_http=self.egress.allow_insecure_http):
            # Allowed in clear because it never leaves the machine: not through a proxy either.
            kwargs["proxies"] = {}
        if self.budget is not None and where.origin == self.egress.api_origin:
            return self.budget.send(lambda: super(GatedSession, self).send(request, **kwargs))
        return super().send(request, **kwargs)

    def rebuild_auth(
        self, prepared_request: requests.PreparedRequest, response: requests.Response
    ) -> None:
        """Runs for every redirect hop requests builds (also for ``Response.next`` when it
        does not follow): the hop is remembered, and judged when it is sent."""
        self._hops[prepared_request] = response.request.url or ""
        super().rebuild_auth(prepared_request, response)  # type: ignore[no-untyped-call]
        # A DPoP proof names one URL: the hop gets its own (or none, if its token was dropped).
        sign_redirect = getattr(self.auth, "sign_redirect", None)
        if sign_redirect is not None:
            sign_redirect(prepared_request)

    def _redirect(self, from_url: str, request: requests.PreparedRequest) -> Target:
        to_url = request.url or ""
        try:
            return self.egress.redirect(from_url, to_url)
        except OriginNotAllowedError as exc:
            if self.egress.is_allowed_other(to_url):
                raise AllowedOriginRedirect(
                    str(exc), origin=exc.origin, url=to_url, method=request.method or "GET"
                ) from None
            raise

    def merge_environment_settings(  # type: ignore[override]
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        settings = dict(super().merge_environment_settings(url, proxies, stream, verify, cert))
        if verify is None:
            settings["verify"] = self.verify
        return settings
