"""Counting a streamed answer's records whatever its chunk boundaries: NDJSON lines, CSV rows
(quoted newlines, quotes split across chunks), gzip decompressed in bounded pieces."""

from __future__ import annotations

import csv
import gzip
import io
import random
import zlib

import pytest

from airflow_provider_oauthcc.pull.stream import streamed_format
from airflow_provider_oauthcc.pull.stream_count import CsvRowCounter, Gunzip, NdjsonCounter

Counter = NdjsonCounter | CsvRowCounter


def every_split(data: bytes, counter_type: type[Counter]) -> set[int]:
    """The counts for every way of cutting ``data`` in two chunks, and in 1-byte chunks."""
    counts = set()
    for cut in range(len(data) + 1):
        counter = counter_type()
        counter.feed(data[:cut])
        counter.feed(data[cut:])
        counts.add(counter.finish())
    counter = counter_type()
    for byte in range(len(data)):
        counter.feed(data[byte : byte + 1])
    counts.add(counter.finish())
    return counts


@pytest.mark.parametrize(
    ("body", "records"),
    [
        (b'{"a":1}\n{"b":2}\n', 2),
        (b'{"a":1}\n{"b":2}', 2),  # no newline after the last record
        (b'{"a":1}\r\n{"b":2}\r\n', 2),
        (b'{"a":1}\n\n\n{"b":2}\n\n', 2),  # blank lines are not records
        (b'\r\n{"a":1}\r\n\r\n{"b":2}\r\n\r\n', 2),
        (b"", 0),
        (b"\n", 0),
        (b"x", 1),
    ],
)
def test_ndjson_counts_non_empty_lines_wherever_the_chunks_break(body: bytes, records: int) -> None:
    assert every_split(body, NdjsonCounter) == {records}


CSV_BODIES = [
    b"id,name\r\n1,a\r\n2,b\r\n",
    b"id,name\n1,a\n2,b",  # no newline after the last row
    b'id,note\n1,"two\nlines"\n2,"a ""quoted""\r\nword"\n3,"x"\n',
    b'id,note\n1,""\n2,"\n"\n',
    b"id\n",  # the header only
    b"",
]


@pytest.mark.parametrize("body", CSV_BODIES)
def test_csv_counts_rows_without_the_header_and_not_newlines_inside_quotes(body: bytes) -> None:
    rows = [row for row in csv.reader(io.StringIO(body.decode(), newline="")) if row]
    assert every_split(body, CsvRowCounter) == {max(len(rows) - 1, 0)}


def test_csv_counts_a_large_quoted_body_fed_in_random_chunks() -> None:
    rng = random.Random(7)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "note"])
    for n in range(3000):
        note = rng.choice(["plain", 'say "hi"', "two\nlines", "comma, inside", "\r\n"])
        writer.writerow([n, note])
    body = out.getvalue().encode()
    counter = CsvRowCounter()
    position = 0
    while position < len(body):
        size = rng.randint(1, 4096)
        counter.feed(body[position : position + size])
        position += size
    assert counter.finish() == 3000


def test_gunzip_yields_bounded_pieces_of_every_member() -> None:
    bomb = gzip.compress(b"\n" * (20 * 1024 * 1024))  # 20 KiB that expand to 20 MiB
    body = bomb + gzip.compress(b"{}\n")
    gunzip = Gunzip(piece=1024 * 1024)
    pieces = [
        piece for cut in range(0, len(body), 4096) for piece in gunzip.feed(body[cut : cut + 4096])
    ]
    gunzip.finish()
    assert max(len(piece) for piece in pieces) <= 1024 * 1024
    assert b"".join(pieces) == b"\n" * (20 * 1024 * 1024) + b"{}\n"


def test_gunzip_refuses_a_stream_cut_short_or_not_gzip() -> None:
    body = gzip.compress(b"{}\n" * 1000)
    gunzip = Gunzip()
    list(gunzip.feed(body[:-8]))  # without the trailer
    with pytest.raises(EOFError):
        gunzip.finish()
    with pytest.raises(zlib.error):
        list(Gunzip().feed(b"not gzip at all"))


@pytest.mark.parametrize(
    ("given", "meant"),
    [("json", None), ("ndjson", "ndjson"), ("JSONL", "ndjson"), ("csv", "csv"), ("raw", "raw")],
)
def test_response_formats_and_their_aliases(given: str, meant: str | None) -> None:
    assert streamed_format(given) == meant


def test_an_unknown_response_format_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="response_format must be one of json, ndjson, jsonl"):
        streamed_format("parquet")
