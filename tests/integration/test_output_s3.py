"""Pulls to ``s3://`` through Airflow's ``ObjectStoragePath`` (the amazon provider's s3fs file
system) against a local S3, moto's server mode (issue 14, item 9).

On S3 there is no rename: publishing copies the temporary object to the final key and deletes
it, the folder creation is a no-op, and the stale-partial cleanup lists a key prefix. Each test
pulls through ``OAuthHttpOperator`` from the devserver and then lists the bucket with boto3
(not through s3fs, whose listing cache could hide a leftover object).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from airflow_provider_oauthcc.auth.errors import ApiError
from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator, _attempt_owner
from airflow_provider_oauthcc.pull.output import OutputAborted
from airflow_provider_oauthcc.pull.pagination import LinkHeaderPaginator
from devserver import DevServer
from tests.support.moto_s3 import MotoS3, moto_s3
from tests.support.threads import allow_execute_on_this_thread

from .conftest import api_connection

pytestmark = pytest.mark.integration

RECORDS = 250
PAGE_SIZE = 50  # 5 pages


@pytest.fixture(scope="module")
def s3() -> Iterator[MotoS3]:
    with moto_s3() as server:
        yield server


@pytest.fixture(autouse=True)
def crm(api: DevServer, monkeypatch: pytest.MonkeyPatch) -> str:
    return api_connection(api, monkeypatch, records=RECORDS)


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix of this test's own, so the tests share the bucket but not their objects."""
    return "".join(c if c.isalnum() else "-" for c in request.node.name) + "/"


def pull(output: str, **kwargs: Any) -> OAuthHttpOperator:
    return OAuthHttpOperator(
        task_id="pull",
        oauth_conn_id="crm",
        endpoint="/v1/link/items",
        data={"limit": PAGE_SIZE},
        paginate=LinkHeaderPaginator(),
        output=output,
        **kwargs,
    )


def ids_in(body: bytes) -> list[int]:
    return [json.loads(line)["id"] for line in body.decode().splitlines()]


def test_a_completed_pull_is_one_object_with_every_record_once(s3: MotoS3, prefix: str) -> None:
    key = f"{prefix}landing/2026/11/items.jsonl"  # "folders" that do not exist: mkdir is a no-op
    summary = pull(s3.url(key)).execute({})

    assert s3.keys(prefix) == [key]  # no .partial object, no folder marker
    assert ids_in(s3.read(key)) == list(range(1, RECORDS + 1))
    assert summary["records"] == RECORDS and summary["pages"] == RECORDS // PAGE_SIZE
    assert summary["path"] == s3.url(key)
    assert s3.multipart_uploads() == []


def _fail_from_page_3(api: DevServer) -> Any:
    """A ``response_check`` that makes the API answer 500 from page 3 on, retries included."""
    pages = 0

    def check(response: requests.Response) -> bool:
        nonlocal pages
        pages += 1
        if pages == 2:
            api.api_faults.add(status=500, every=1)
        return True

    return check


@pytest.mark.parametrize("earlier", [None, b'{"id": 0}\n'], ids=["first_run", "re_run"])
def test_a_failed_pull_publishes_nothing_and_leaves_no_partial(
    api: DevServer, s3: MotoS3, prefix: str, earlier: bytes | None
) -> None:
    key = f"{prefix}items.jsonl"
    if earlier is not None:  # a complete object from an earlier run stays as it was
        s3.put(key, earlier)
    operator = pull(
        s3.url(key), response_check=_fail_from_page_3(api), page_retries=2, retry_max_wait=0.1
    )
    with pytest.raises(ApiError, match=r"^Page 3: 500"):
        operator.execute({})

    assert api.stats.api_requests_by_status[500] == 3  # page 3 and its two retries
    assert s3.keys(prefix) == ([] if earlier is None else [key])
    if earlier is not None:
        assert s3.read(key) == earlier
    assert s3.multipart_uploads() == []


def test_an_interrupted_pull_publishes_nothing_and_leaves_no_partial(
    api: DevServer, s3: MotoS3, prefix: str
) -> None:
    key = f"{prefix}items.jsonl"
    operator = pull(s3.url(key))
    held = api.api_faults.add(hold=True, every=3, times=1, hold_max=60)
    error: list[BaseException] = []

    def run() -> None:
        try:
            allow_execute_on_this_thread()
            operator.execute({})
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        held.wait_held(timeout=60)  # pages 1 and 2 are written; page 3 is in flight
        operator.on_kill()  # as Airflow calls it when the task is stopped
    finally:
        held.release()
        thread.join(60)
    assert not thread.is_alive()

    assert len(error) == 1 and isinstance(error[0], OutputAborted), error
    assert api.stats.api_requests == 3
    assert s3.keys(prefix) == []
    assert s3.multipart_uploads() == []


@pytest.mark.parametrize("name", ["items.jsonl", "items[1].jsonl"])
def test_a_retry_removes_the_partial_an_earlier_attempt_left(
    s3: MotoS3, prefix: str, name: str
) -> None:
    key = f"{prefix}{name}"
    ti = SimpleNamespace(dag_id="crm", task_id="pull", run_id="manual__1", map_index=-1)
    context: Any = {"ti": ti}  # the part of a task's context the owner name comes from
    owner = _attempt_owner(context)
    assert owner is not None
    stale = f"{prefix}.{name}.{owner}-0123456789ab.partial"  # a SIGKILLed attempt's
    s3.put(stale, b'{"id": 1}\n')
    others = f"{prefix}.{name}.{'f' * 12}-0123456789ab.partial"  # another task instance's
    s3.put(others, b"x")

    pull(s3.url(key)).execute(context)

    assert s3.keys(prefix) == sorted([key, others])
    assert ids_in(s3.read(key)) == list(range(1, RECORDS + 1))


def test_a_retry_aborts_the_multipart_upload_a_killed_attempt_left(s3: MotoS3, prefix: str) -> None:
    """On S3 a partial is no object: s3fs keeps up to a block (50 MiB by default) in the writing
    process, then uploads it as a part of a multipart upload that only its ``close`` completes.
    An attempt SIGKILLed past that leaves the upload, unlisted but stored (and billed); the retry
    aborts it, as it deletes a stale partial file."""
    key = f"{prefix}items.jsonl"
    ti = SimpleNamespace(dag_id="crm", task_id="pull", run_id="manual__2", map_index=-1)
    context: Any = {"ti": ti}
    owner = _attempt_owner(context)
    assert owner is not None

    def upload_left(partial: str) -> None:  # as s3fs leaves it when its process is killed
        upload = s3.client.create_multipart_upload(Bucket=s3.bucket, Key=partial)
        s3.client.upload_part(
            Bucket=s3.bucket, Key=partial, UploadId=upload["UploadId"], PartNumber=1, Body=b"x"
        )

    stale = f"{prefix}.items.jsonl.{owner}-0123456789ab.partial"
    others = f"{prefix}.items.jsonl.{'f' * 12}-0123456789ab.partial"  # another task instance's
    upload_left(stale)
    upload_left(others)

    pull(s3.url(key)).execute(context)

    assert s3.keys(prefix) == [key]
    assert ids_in(s3.read(key)) == list(range(1, RECORDS + 1))
    assert [k for k in s3.multipart_uploads() if k.startswith(prefix)] == [others]


def test_a_retry_not_allowed_to_list_uploads_still_pulls(
    s3: MotoS3, prefix: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Listing uploads needs s3:ListBucketMultipartUploads, which a write-only policy may not
    grant: the cleanup is skipped with a warning, the pull is not failed for it."""
    from s3fs import S3FileSystem

    call_s3 = S3FileSystem.call_s3

    def refusing(self: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        if method == "list_multipart_uploads":
            raise PermissionError("Access Denied")
        return call_s3(self, method, *args, **kwargs)

    monkeypatch.setattr(S3FileSystem, "call_s3", refusing)
    key = f"{prefix}items.jsonl"
    ti = SimpleNamespace(dag_id="crm", task_id="pull", run_id="manual__3", map_index=-1)

    pull(s3.url(key)).execute({"ti": ti})

    assert s3.keys(prefix) == [key]
    assert "Could not clean up unfinished uploads that earlier attempts left" in caplog.text


@pytest.mark.parametrize("fails", [False, True], ids=["completed", "failed"])
def test_a_key_with_glob_characters_is_published_or_removed_as_it_is(
    api: DevServer, s3: MotoS3, prefix: str, fails: bool
) -> None:
    """fsspec expands ``[``, ``*`` and ``?`` in the paths ``rm``, ``copy`` and ``mv`` are given;
    an object key is a name, not a pattern."""
    key = f"{prefix}items[2026-11]*?.jsonl"
    kwargs: dict[str, Any] = {"page_retries": 0}
    if fails:
        kwargs["response_check"] = _fail_from_page_3(api)
        with pytest.raises(ApiError, match=r"^Page 3: 500"):
            pull(s3.url(key), **kwargs).execute({})
        assert s3.keys(prefix) == []
    else:
        pull(s3.url(key), **kwargs).execute({})
        assert s3.keys(prefix) == [key]
        assert ids_in(s3.read(key)) == list(range(1, RECORDS + 1))
