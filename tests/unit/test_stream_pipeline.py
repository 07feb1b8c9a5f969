"""The reader and writer threads of a streamed download: order kept, errors raised where the
chunks are consumed, and a stop never left waiting on a full queue."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from airflow_provider_oauthcc.pull.pipeline import BackgroundWrites, Prefetch


def test_prefetch_keeps_the_order_and_raises_the_readers_error_in_the_consumer() -> None:
    def source() -> Iterator[bytes]:
        yield b"a"
        yield b"b"
        raise ConnectionError("cut off")

    received = []
    with pytest.raises(ConnectionError, match="cut off"):
        for chunk in Prefetch(source()):
            received.append(chunk)
    assert received == [b"a", b"b"]


def test_a_stopped_prefetch_ends_its_thread_though_the_source_goes_on() -> None:
    def endless() -> Iterator[bytes]:
        while True:
            yield b"x" * 1024

    prefetch = Prefetch(endless(), depth=2)
    assert next(iter(prefetch)) == b"x" * 1024
    prefetch.stop()
    prefetch.join(5)
    assert not prefetch._thread.is_alive()


def test_background_writes_are_in_order_and_finish_waits_for_them() -> None:
    written: list[bytes] = []
    writes = BackgroundWrites(written.append)
    for n in range(50):
        writes.put(bytes([n]))
    writes.finish()
    assert written == [bytes([n]) for n in range(50)]


def test_a_failed_write_is_raised_at_the_next_put_or_at_finish_never_a_hang() -> None:
    release = threading.Event()

    def write(chunk: bytes) -> None:
        release.wait(5)
        raise OSError("disk full")

    writes = BackgroundWrites(write, depth=1)
    writes.put(b"1")
    release.set()
    with pytest.raises(OSError, match="disk full"):
        for _ in range(100):  # the queue is full and the writer is gone: raised, not stuck
            writes.put(b"more")
        writes.finish()
    writes.stop()
