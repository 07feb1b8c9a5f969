"""One large answer streamed to object storage (issue 25, item 2): against the devserver's
export files (NDJSON or CSV, a gzip file or gzip Content-Encoding), through the operator and
through ``stream_to_storage`` as the hook's pull API calls it.

The file appears only when complete; a cut-off answer is sent again from the start and its
first bytes are not kept; a failure or a kill leaves nothing (file:// and a local S3).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_oauthcc.auth.errors import ApiConnectionError, ApiError
from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook
from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
from airflow_provider_oauthcc.pull.engine import PageFetcher, PullStopped, close_session
from airflow_provider_oauthcc.pull.pagination import PageRequest
from airflow_provider_oauthcc.pull.retry import RetryPolicy
from airflow_provider_oauthcc.pull.stream import stream_to_storage
from devserver import DevServer
from tests.support.moto_s3 import MotoS3, moto_s3
from tests.support.threads import allow_execute_on_this_thread

from .conftest import api_connection

pytestmark = pytest.mark.integration

RECORDS = 2000
PAD = 100


@pytest.fixture(autouse=True)
def crm(api: DevServer, monkeypatch: pytest.MonkeyPatch) -> str:
    return api_connection(api, monkeypatch, records=RECORDS)


@pytest.fixture
def export(api: DevServer) -> str:
    """The download endpoint of a finished export job over the whole dataset."""
    job = api.exports.create(ready_after=0)
    return f"/v1/exports/{job.id}/download"


def download(endpoint: str, output: str, **kwargs: Any) -> OAuthHttpOperator:
    query = {
        key: kwargs.pop(key)
        for key in ("format", "gzip", "pad", "pace", "length", "cut")
        if key in kwargs
    }
    return OAuthHttpOperator(
        task_id="download",
        oauth_conn_id="crm",
        endpoint=endpoint,
        data={"format": "ndjson", "pad": PAD, **query},
        output_path=output,
        **kwargs,
    )


def served(api: DevServer, endpoint: str, **query: Any) -> bytes:
    """The export's body as the server sends it, read with requests (Content-Encoding kept)."""
    token = requests.post(
        api.token_url,
        data={"grant_type": "client_credentials", "scope": "read"},
        auth=("app", "s3cret-Value-api-4242"),
        timeout=10,
    ).json()["access_token"]
    response = requests.get(
        api.api_url + endpoint,
        params={"format": "ndjson", "pad": PAD, **query},
        headers={"Authorization": f"Bearer {token}"},
        stream=True,
        timeout=30,
    )
    response.raise_for_status()
    return bytes(response.raw.read(decode_content=False))


def test_an_ndjson_answer_is_written_as_sent_and_its_records_counted(
    api: DevServer, export: str, tmp_path: Path
) -> None:
    target = tmp_path / "out" / "export.ndjson"
    summary = download(export, str(target), response_format="ndjson").execute({})

    body = target.read_bytes()
    assert body == served(api, export)
    assert [json.loads(line)["id"] for line in body.splitlines()] == list(range(1, RECORDS + 1))
    assert summary == {
        "path": str(target),
        "records": RECORDS,
        "pages": 1,
        "bytes": len(body),
        "duration_s": summary["duration_s"],
        "truncated": False,
        "retries": 0,
    }
    assert sorted(p.name for p in target.parent.iterdir()) == ["export.ndjson"]


def test_a_csv_answer_counts_its_rows_without_the_header(
    api: DevServer, export: str, tmp_path: Path
) -> None:
    target = tmp_path / "export.csv"
    summary = download(export, f"file://{target}", format="csv", response_format="csv").execute({})
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert summary["records"] == len(rows) == RECORDS
    assert rows[-1]["id"] == str(RECORDS)


@pytest.mark.parametrize(
    ("gzip_as", "decompress", "written_compressed"),
    [
        ("file", None, True),  # a gzip file is a file: kept as it is
        ("file", True, False),  # ... unless asked
        ("encoding", None, False),  # Content-Encoding is decoded, as HTTP does
        ("encoding", True, False),
        ("encoding", False, True),  # the bytes on the wire
    ],
)
def test_gzip_is_kept_or_decompressed_as_asked_and_records_are_counted_either_way(
    api: DevServer,
    export: str,
    tmp_path: Path,
    gzip_as: str,
    decompress: bool | None,
    written_compressed: bool,
) -> None:
    target = tmp_path / "export.out"
    summary = download(
        export, str(target), gzip=gzip_as, response_format="jsonl", decompress=decompress
    ).execute({})

    written = target.read_bytes()
    plain = served(api, export)
    if written_compressed:
        assert written == served(api, export, gzip=gzip_as)
        assert gzip.decompress(written) == plain
    else:
        assert written == plain
    assert summary["records"] == RECORDS
    assert summary["bytes"] == len(written)


def test_a_raw_answer_is_passed_through_uncounted(
    api: DevServer, export: str, tmp_path: Path
) -> None:
    target = tmp_path / "export.bin"
    summary = download(export, str(target), gzip="file", response_format="raw").execute({})
    assert target.read_bytes() == served(api, export, gzip="file")
    assert summary["records"] is None


def test_a_large_answer_is_streamed_in_bounded_memory(
    api: DevServer, export: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = 26_000  # records of about 2.1 KB: 53 MiB
    api.dataset_size = size
    target = tmp_path / "large.ndjson"
    operator = download(export, str(target), pad=2000, response_format="ndjson")
    tracemalloc.start()
    try:
        summary = operator.execute({})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary["bytes"] > 50 * 1024 * 1024
    assert summary["records"] == size
    # The server (in this process too) and the client together: a few chunks, not the body.
    assert peak < 16 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"


def test_an_answer_cut_off_is_sent_again_and_its_first_bytes_are_not_kept(
    api: DevServer, export: str, tmp_path: Path
) -> None:
    api.api_faults.add(reset=True, times=1)  # half the body, then the connection drops
    target = tmp_path / "export.ndjson"
    # 4 MiB: the first attempt writes 2 MiB before it breaks off
    summary = download(export, str(target), pad=2000, response_format="ndjson").execute({})

    assert target.read_bytes() == served(api, export, pad=2000)  # no half answer kept
    assert summary["records"] == RECORDS
    assert summary["retries"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["export.ndjson"]


def test_an_answer_cut_off_every_time_fails_and_leaves_nothing(
    api: DevServer, export: str, tmp_path: Path
) -> None:
    api.api_faults.add(reset=True, every=1)
    operator = download(
        export, str(tmp_path / "export.ndjson"), response_format="ndjson", page_retries=1
    )
    with pytest.raises(ApiConnectionError, match="gave up after 2 attempts"):
        operator.execute({})
    assert list(tmp_path.iterdir()) == []


class Run(threading.Thread):
    """``operator.execute`` in a thread; ``error`` is what it raised."""

    def __init__(self, operator: OAuthHttpOperator) -> None:
        super().__init__(daemon=True)
        self.operator = operator
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            allow_execute_on_this_thread()
            self.operator.execute({})
        except BaseException as exc:
            self.error = exc


def kill_midway(operator: OAuthHttpOperator) -> Run:
    """Start the download, call on_kill once part of the body has arrived, wait for the end."""
    run = Run(operator)
    run.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        fetcher = operator._running_fetcher
        if fetcher is not None and fetcher._streaming is not None:
            break
        time.sleep(0.01)
    time.sleep(0.3)  # a few paced chunks written
    operator.on_kill()
    run.join(30)
    assert not run.is_alive()
    return run


# Chunked, or with a Content-Length as a stored file is sent: closed under its reader, such a
# body ends as if it were complete (urllib3 reads no further and raises nothing).
FRAMINGS = pytest.mark.parametrize(
    "framing", [{}, {"length": 1}], ids=["chunked", "content-length"]
)


@FRAMINGS
def test_a_killed_download_leaves_no_partial_file(
    export: str, tmp_path: Path, framing: dict[str, Any]
) -> None:
    operator = download(
        export,
        str(tmp_path / "export.ndjson"),
        pad=2000,
        pace=0.1,
        response_format="raw",
        **framing,
    )
    run = kill_midway(operator)
    assert isinstance(run.error, PullStopped), run.error
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def s3() -> Iterator[MotoS3]:
    # A connection of its own: Airflow keeps one file system per connection ID in a process,
    # and another module's moto server (test_output_s3) is gone by now.
    with moto_s3(conn_id="aws_moto_stream") as server:
        yield server


def test_on_s3_a_completed_download_is_one_object(api: DevServer, export: str, s3: MotoS3) -> None:
    key = "streamed/complete/export.ndjson"
    summary = download(export, s3.url(key), response_format="ndjson").execute({})
    assert s3.keys("streamed/complete/") == [key]
    assert s3.read(key) == served(api, export)
    assert summary["records"] == RECORDS


def test_on_s3_a_failed_or_killed_download_leaves_no_object_and_no_upload(
    api: DevServer, export: str, s3: MotoS3
) -> None:
    prefix = "streamed/failed/"
    api.api_faults.add(reset=True, every=1)
    operator = download(export, s3.url(prefix + "cut.ndjson"), response_format="ndjson")
    operator.page_retries = 0
    with pytest.raises(ApiConnectionError):
        operator.execute({})
    api.api_faults.clear()
    run = kill_midway(
        download(
            export, s3.url(prefix + "killed.ndjson"), pad=2000, pace=0.1, response_format="ndjson"
        )
    )
    assert isinstance(run.error, PullStopped), run.error
    assert s3.keys(prefix) == []
    # moto keeps one S3 for the whole process: other modules' uploads are not this test's.
    assert [key for key in s3.multipart_uploads() if key.startswith(prefix)] == []


def hook_download(
    endpoint: str, target: str, query: dict[str, Any], response_format: str
) -> tuple[PageFetcher, Callable[[], dict[str, Any]]]:
    """A fetcher of the hook's session (as ``OAuthCCHook.pull_to`` makes), and a function that
    streams ``endpoint``'s answer through it to ``target`` and closes the session."""
    hook = OAuthCCHook(oauth_conn_id="crm")
    session = hook.get_conn()
    fetcher = PageFetcher(
        session,
        method="GET",
        options=hook.merged_extra,
        check_response=hook.check_response,
        policy=RetryPolicy(retries=2, max_wait=0),
    )
    request = PageRequest(
        url=hook.url_from_endpoint(endpoint),
        data={"pad": PAD, **query},
        headers={},
        data_in_query=True,
    )

    def run() -> dict[str, Any]:
        try:
            return stream_to_storage(
                fetcher,
                request,
                target,
                response_format=response_format,
                decompress=None,
                owner=None,
                log=hook.log,
                progress_interval=0,
            )
        finally:
            close_session(session)

    return fetcher, run


def test_the_hook_path_streams_through_a_fetcher_of_the_hooks_session(
    api: DevServer, export: str, tmp_path: Path
) -> None:
    api.api_faults.add(status=503, retry_after=0, times=1)
    _, run = hook_download(export, f"file://{tmp_path}/export.csv", {"format": "csv"}, "csv")
    summary = run()
    assert summary["records"] == RECORDS
    assert summary["retries"] == 1  # the 503, retried within the fetcher's policy
    assert (tmp_path / "export.csv").read_bytes() == served(api, export, format="csv")


@pytest.mark.parametrize(
    ("gzip_as", "decompress"),
    [
        ("file", None),  # kept compressed, its records counted on a side decompressor
        ("file", True),
        ("encoding", None),  # Content-Encoding: gzip, decoded on the way
    ],
)
def test_a_gzip_answer_cut_inside_its_member_is_refused_and_nothing_is_published(
    export: str, tmp_path: Path, gzip_as: str, decompress: bool | None
) -> None:
    """The HTTP answer is whole (its Content-Length says so) but the gzip stream in it stops
    before its end: that is not the export, whatever the records counted so far."""
    operator = download(
        export,
        str(tmp_path / "export.ndjson"),
        gzip=gzip_as,
        cut=8,  # the member's trailer (its CRC and size)
        response_format="ndjson",
        decompress=decompress,
        page_retries=0,
    )
    with pytest.raises(ApiError, match="not valid gzip"):
        operator.execute({})
    assert list(tmp_path.iterdir()) == []


@FRAMINGS
def test_a_download_whose_session_is_closed_midway_publishes_nothing(
    export: str, tmp_path: Path, framing: dict[str, Any]
) -> None:
    """Closing the session is a stop on its own, whoever closes it and whatever the writer's
    state: the answer it cut short is never taken for a whole one."""
    fetcher, run = hook_download(
        export,
        f"file://{tmp_path}/export.ndjson",
        {"format": "ndjson", "pad": 2000, "pace": 0.1, **framing},
        "ndjson",
    )
    threading.Timer(0.5, fetcher.close).start()
    with pytest.raises(PullStopped, match="stopped"):
        run()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"response_format": "csv"}, "give output_path too"),
        (
            {"response_format": "ndjson", "output_path": "/tmp/x", "paginate": object()},
            "does not go with paginate",
        ),
        ({"decompress": True}, "decompress applies to streamed answers"),
        (
            {"response_format": "raw", "output_path": "/tmp/x", "response_filter": len},
            "response_filter and response_check do not apply",
        ),
        ({"response_format": "xml", "output_path": "/tmp/x"}, "response_format must be one of"),
    ],
)
def test_what_does_not_go_with_a_streamed_answer_is_refused_at_parse_time(
    kwargs: dict[str, Any], message: str
) -> None:
    from airflow_provider_oauthcc.pull.pagination import LinkHeaderPaginator

    if "paginate" in kwargs:
        kwargs["paginate"] = LinkHeaderPaginator()
    with pytest.raises(ValueError, match=message):
        OAuthHttpOperator(task_id="t", oauth_conn_id="crm", endpoint="/x", **kwargs)


def test_a_deferrable_streamed_download_runs_in_the_worker(
    api: DevServer, export: str, tmp_path: Path
) -> None:
    target = tmp_path / "export.ndjson"
    operator = download(export, str(target), response_format="ndjson", deferrable=True)
    summary = operator.execute({})  # would raise TaskDeferred if it deferred
    assert summary["records"] == RECORDS
