"""The fault matrix: a full paginated pull to object storage through ``OAuthHttpOperator``,
once per fault of the local server, each ending with every record exactly once in the file, or
(the ``exhausted`` cases) a clean failure that says why and leaves nothing behind.

Each case runs against its own ``DevServer`` (3,000 records, 30 pages of 100 over the
``Link`` header), so a slow request or a revoked token never spills into the next case. Faults
that must start mid-pull are armed by a ``response_check`` that acts when page ``k`` arrives.
docs/reliability.md lists these cases.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_oauthcc.auth.errors import (
    ApiConnectionError,
    ApiError,
    ApiUnauthorizedError,
    TokenRequestError,
)
from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
from airflow_provider_oauthcc.pull.pagination import LinkHeaderPaginator
from devserver import DevServer, Fault
from tests.support.connections import conn_json

pytestmark = pytest.mark.integration

SECRET = "s3cret-Value-fm-5150"
RECORDS = 3_000
PAGE_SIZE = 100
PAGES = RECORDS // PAGE_SIZE
# The connection's timeout in every case (token and API requests): far above what a served
# request takes on a busy machine, so only the held requests of the timeout case time out.
TIMEOUT_S = 5.0


@dataclass
class Outcome:
    """What a case did to the server: the faults it armed, the tokens it revoked."""

    faults: list[Fault] = field(default_factory=list)
    revoked: int = 0


Arm = Callable[[DevServer, Outcome], None]


@dataclass(frozen=True)
class Case:
    id: str
    #: Armed before the pull starts.
    arm: Arm
    #: Armed when page ``at_page`` has arrived (and before the next one is requested).
    mid_pull: Arm | None = None
    at_page: int = 10
    #: The failure an exhausted case must end with: its type and a regex of its message.
    fails_with: tuple[type[BaseException], str] | None = None
    #: The retry reason each retried page logs (``Page N: <reason> on attempt``).
    logged_reason: str | None = None
    #: A line the failure must log (a regex).
    logged_failure: str | None = None
    check: Callable[[DevServer, Outcome, dict[str, Any]], None] | None = None


def _api(**fault: Any) -> Arm:
    def arm(srv: DevServer, outcome: Outcome) -> None:
        outcome.faults.append(srv.api_faults.add(**fault))

    return arm


def _token(**fault: Any) -> Arm:
    def arm(srv: DevServer, outcome: Outcome) -> None:
        outcome.faults.append(srv.token_faults.add(**fault))

    return arm


def _revoke(srv: DevServer, outcome: Outcome) -> None:
    outcome.revoked += srv.revoke_all_tokens()


def _both(*arms: Arm) -> Arm:
    def arm(srv: DevServer, outcome: Outcome) -> None:
        for one in arms:
            one(srv, outcome)

    return arm


def _nothing(srv: DevServer, outcome: Outcome) -> None:
    return None


# -- what each completed case must also show ------------------------------------------------------


def _the_fault_happened(outcome: Outcome) -> None:
    assert outcome.faults or outcome.revoked, "nothing was done to the server"
    assert all(f.fired >= 1 for f in outcome.faults), "a fault never fired"


def _retried_503s(srv: DevServer, outcome: Outcome, summary: dict[str, Any]) -> None:
    fired = outcome.faults[0].fired
    assert fired == (PAGES + fired) // 5  # every fifth request, retries included
    assert summary["retries"] == fired == srv.stats.api_requests_by_status[503]
    assert srv.stats.api_requests_by_status[200] == PAGES, "a page was served twice"


def _waited_for_retry_after(srv: DevServer, outcome: Outcome, summary: dict[str, Any]) -> None:
    assert summary["retries"] == 2 == srv.stats.api_requests_by_status[429]
    assert summary["duration_s"] >= 2.0, "Retry-After: 1 was not honoured"


def _retried_resets(srv: DevServer, outcome: Outcome, summary: dict[str, Any]) -> None:
    fired = outcome.faults[0].fired
    assert fired == (PAGES + fired) // 7  # every seventh request, retries included
    assert summary["retries"] == fired


def _retried_timeouts(srv: DevServer, outcome: Outcome, summary: dict[str, Any]) -> None:
    assert outcome.faults[0].held == 2
    assert summary["retries"] == 2


def _rode_out_token_outage(srv: DevServer, outcome: Outcome, summary: dict[str, Any]) -> None:
    assert srv.stats.token_requests == 4 and srv.stats.token_requests_ok == 1
    assert summary["retries"] == 0, "the outage reached the page retries"
    assert srv.stats.api_requests_by_status == {200: PAGES}


def _refreshed_and_replayed(srv: DevServer, outcome: Outcome, summary: dict[str, Any]) -> None:
    assert srv.stats.token_requests_ok == 2, "no new token after the revocation"
    assert srv.stats.api_requests_by_status == {200: PAGES, 401: 1}
    assert summary["retries"] == 0, "the 401 was retried as a page, not replayed"


def _retried_token_500(srv: DevServer, outcome: Outcome, summary: dict[str, Any]) -> None:
    assert srv.stats.token_requests == 2 and srv.stats.token_requests_ok == 1
    assert srv.stats.api_requests_by_status == {200: PAGES}


CASES = [
    Case(
        "api_503_every_5th",
        _api(status=503, every=5),
        logged_reason="503:Service Unavailable",
        check=_retried_503s,
    ),
    Case(
        "api_429_retry_after",
        _api(status=429, retry_after=1, every=10, times=2),
        logged_reason="429:Too Many Requests",
        check=_waited_for_retry_after,
    ),
    Case(
        "api_reset_mid_body",
        _api(reset=True, every=7),
        logged_reason="ChunkedEncodingError",
        check=_retried_resets,
    ),
    Case(
        "api_slower_than_timeout",
        _api(hold=True, every=12, times=2),  # held until the server stops: always too slow
        logged_reason="ReadTimeout",
        check=_retried_timeouts,
    ),
    Case(
        "token_endpoint_down",
        _token(status=503, delay=0.4, times=3),
        check=_rode_out_token_outage,
    ),
    Case(
        "token_revoked_mid_pull",
        _nothing,
        mid_pull=_revoke,
        check=_refreshed_and_replayed,
    ),
    Case(
        "token_endpoint_500_once",
        _token(status=500, times=1),
        check=_retried_token_500,
    ),
    # -- retries exhausted ------------------------------------------------------------------------
    Case(
        "exhausted_api_503_always",
        _nothing,
        mid_pull=_api(status=503, every=1),
        fails_with=(ApiError, r"^Page 11: 503:Service Unavailable \(gave up after 4 attempts\)$"),
        logged_reason="503:Service Unavailable",
    ),
    Case(
        "exhausted_api_reset_always",
        _nothing,
        mid_pull=_api(reset=True, every=1),
        fails_with=(
            ApiConnectionError,
            r"^Page 11: .*Connection broken: IncompleteRead.*4 attempts",
        ),
        logged_reason="ChunkedEncodingError",
        logged_failure=r"Page 11: ChunkedEncodingError; gave up after 4 attempts",
    ),
    Case(
        "exhausted_token_endpoint_down",
        _nothing,
        mid_pull=_both(_revoke, _token(status=503, every=1)),
        fails_with=(
            TokenRequestError,
            r"^token endpoint refused the request: temporarily_unavailable \(HTTP 503\): "
            r"injected fault \(gave up after 4 attempts\)$",
        ),
    ),
    Case(
        "exhausted_api_401_always",
        _nothing,
        mid_pull=_api(status=401, every=1),
        fails_with=(
            ApiUnauthorizedError,
            r"^401:Unauthorized: the API rejected the token, also after a refresh "
            r"\(invalid_token: injected fault\)$",
        ),
    ),
]


@pytest.fixture
def srv(monkeypatch: pytest.MonkeyPatch) -> Iterator[DevServer]:
    with DevServer(dataset_size=RECORDS) as server:
        server.add_client("app", secret=SECRET, scope="read")
        connection = conn_json(
            server.api_url,
            "app",
            SECRET,
            auth_url=server.token_url,
            scope="read",
            timeout=TIMEOUT_S,
        )
        monkeypatch.setenv("AIRFLOW_CONN_CRM", connection)
        yield server


def at_page(number: int, action: Callable[[], None]) -> Callable[[requests.Response], bool]:
    """A ``response_check`` that runs ``action`` once, when page ``number`` has arrived."""
    pages = 0

    def check(response: requests.Response) -> bool:
        nonlocal pages
        pages += 1
        if pages == number:
            action()
        return True

    return check


def ids_in(path: Path) -> list[int]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fault_matrix(
    case: Case, srv: DevServer, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    outcome = Outcome()
    case.arm(srv, outcome)
    mid_pull = case.mid_pull
    kwargs: dict[str, Any] = {"page_retries": 3, "retry_max_wait": 1.0}
    if mid_pull is not None:
        kwargs["response_check"] = at_page(case.at_page, lambda: mid_pull(srv, outcome))
    out = tmp_path / "landing"
    target = out / "items.jsonl"
    operator = OAuthHttpOperator(
        task_id="pull",
        oauth_conn_id="crm",
        endpoint="/v1/link/items",
        data={"limit": PAGE_SIZE},
        paginate=LinkHeaderPaginator(),
        output=target.as_uri(),
        **kwargs,
    )
    started = time.monotonic()

    if case.fails_with is None:
        summary = operator.execute({})
        ids = ids_in(target)
        assert len(ids) == RECORDS and set(ids) == set(range(1, RECORDS + 1))
        assert ids == sorted(ids)
        assert summary["records"] == RECORDS and summary["pages"] == PAGES
        assert list(out.iterdir()) == [target], "a temporary file was left behind"
        _the_fault_happened(outcome)
        if case.check is not None:
            case.check(srv, outcome, summary)
    else:
        error_type, message = case.fails_with
        with pytest.raises(error_type) as info:
            operator.execute({})
        assert re.search(message, str(info.value)), str(info.value)
        assert not target.exists()
        assert list(out.iterdir()) == [], "a temporary file was left behind"
        _the_fault_happened(outcome)
        assert srv.stats.api_requests_by_status[200] >= case.at_page, "failed before mid-pull"

    logs = "".join(capfd.readouterr())
    if case.logged_reason is not None:
        assert re.search(rf"Page \d+: {re.escape(case.logged_reason)} on attempt 1", logs), logs[
            -3000:
        ]
    if case.logged_failure is not None:
        assert re.search(case.logged_failure, logs), logs[-3000:]
    assert SECRET not in logs
    # Every wait is bounded: a case that waited on an unbounded thing would hang instead.
    assert time.monotonic() - started < 120, "a fault case took too long"
