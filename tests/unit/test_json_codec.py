"""json_codec: orjson's speed with the standard library's results, and its fallbacks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_oauthcc.pull import json_codec
from airflow_provider_oauthcc.pull.pagination import Page, PageRequest

RECORDS: list[Any] = [
    {"id": 1, "name": "é ü 中文 🙂", "amount": 12.5, "tags": ["a", None], "ok": True},
    {"nested": {"deep": [1, 2.25, -3.5e30, {"x": 'line\nbreak "quoted" \\ tab\t'}]}},
    {"big": 2**70},  # beyond orjson's 64 bits: the standard library writes it
    {1: "int key", None: "null key"},  # as json.dumps writes them: "1", "null"
    [],
    "a bare string",
    0,
]


def stdlib_lines(records: list[Any]) -> bytes:
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    return "".join(dumps(r) + "\n" for r in records).encode()


def test_json_lines_are_byte_for_byte_what_the_standard_library_writes() -> None:
    data, count = json_codec.json_lines(RECORDS)
    assert count == len(RECORDS)
    assert data == stdlib_lines(RECORDS)


def test_small_exponents_are_written_shorter_but_read_back_the_same() -> None:
    data, _ = json_codec.json_lines([{"x": -3e-7, "y": 1e-05}])
    assert json.loads(data) == {"x": -3e-7, "y": 1e-05}


def test_a_record_json_cannot_write_fails_as_json_fails() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        json_codec.json_lines([{"ok": 1}, {"bad": object()}])


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": [1, 2.5, "\xc3\xa9"]}',
        b"[" + str(2**80).encode() + b"]",
        b"[" + str(-(2**63) - 1).encode() + b", 18446744073709551616]",
        b"[NaN]",
    ],
    ids=["plain", "big-number", "just-beyond-64-bits", "nan"],
)
def test_loads_reads_what_json_reads(body: bytes) -> None:
    assert repr(json_codec.loads(body)) == repr(json.loads(body))


def test_not_json_raises_a_value_error() -> None:
    with pytest.raises(ValueError):
        json_codec.loads(b"<html>")


def test_a_page_body_in_another_charset_is_read_as_requests_reads_it() -> None:
    import requests

    response = requests.Response()
    response._content = '{"name": "é"}'.encode("utf-16")
    response.headers["Content-Type"] = "application/json; charset=utf-16"
    page = Page(1, PageRequest("https://api.example.com/x"), response)
    assert page.body == {"name": "é"}
