"""The local API's per-client rate limit, the independent measure of the request budget's
tests: it refuses beyond N, says so in every header style, refills, and counts right."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from devserver import DevServer

from .conftest import SECRET

pytestmark = pytest.mark.integration


def bearer(server: DevServer, client_id: str = "app") -> dict[str, str]:
    answer = requests.post(
        server.token_url, data={"grant_type": "client_credentials"}, auth=(client_id, SECRET)
    )
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def test_refuses_beyond_the_burst_with_retry_after_and_headers(
    server: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]  # the limiter's clock stands still while the requests are sent
    monkeypatch.setattr(server.api_rate_limit, "clock", lambda: now[0])
    server.api_rate_limit.configure(per_second=5)
    headers = bearer(server)
    with requests.Session() as session:
        answers = [session.get(f"{server.api_url}/v1/whoami", headers=headers) for _ in range(7)]
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 2
    assert answers[0].headers["RateLimit-Limit"] == "5"
    assert answers[0].headers["RateLimit-Remaining"] == "4"
    assert answers[4].headers["RateLimit-Remaining"] == "0"
    assert answers[5].headers["Retry-After"] == "1"
    counts = server.api_rate_limit.counts("app")
    assert (counts.admitted, counts.refused) == (5, 2)
    now[0] += 0.45  # about two requests' worth refilled
    with requests.Session() as session:
        answers = [session.get(f"{server.api_url}/v1/whoami", headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]


@pytest.mark.parametrize(
    ("style", "names"),
    [
        ("structured", {"RateLimit", "RateLimit-Policy"}),
        ("x", {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}),
        ("none", set()),
    ],
)
def test_header_styles(server: DevServer, style: str, names: set[str]) -> None:
    server.api_rate_limit.configure(per_second=10, headers=style)  # type: ignore[arg-type]
    answer = requests.get(f"{server.api_url}/v1/whoami", headers=bearer(server))
    said = {name.lower() for name in answer.headers if "ratelimit" in name.lower()}
    assert said == {name.lower() for name in names}
    if style == "structured":
        assert answer.headers["RateLimit"] == '"default";r=9;t=1'
        assert answer.headers["RateLimit-Policy"] == '"default";q=10;w=1'


def test_counts_requests_in_flight_per_client(server: DevServer) -> None:
    headers = bearer(server)
    server.api_rate_limit.configure(per_second=None)

    def call(_: int) -> int:
        url = f"{server.api_url}/v1/sleep?seconds=0.3"
        return requests.get(url, headers=headers, timeout=10).status_code

    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(call, range(3))) == [200] * 3
    counts = server.api_rate_limit.counts("app")
    assert counts.max_in_flight == 3
    assert counts.in_flight == 0
    assert counts.refused == 0


def test_control_endpoint(server: DevServer) -> None:
    url = f"{server.control_url}/rate_limit"
    assert requests.put(url, json={"per_second": 2}).json() == {"per_second": 2, "burst": 2}
    assert requests.put(url, json={"per_second": -1}).status_code == 400
    headers = bearer(server)
    for _ in range(3):
        requests.get(f"{server.api_url}/v1/whoami", headers=headers)
    clients = requests.get(url).json()["clients"]
    assert (clients["app"]["admitted"], clients["app"]["refused"]) == (2, 1)
