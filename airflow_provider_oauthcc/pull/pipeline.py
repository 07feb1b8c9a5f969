"""Two small threads that let a streamed download overlap its work, as ``curl`` does.

Receiving from the socket and writing to a file both release the GIL; counting records does
not. ``Prefetch`` receives the next chunk while the current one is counted; ``BackgroundWrites``
writes a chunk while it is counted. Each holds at most ``depth`` chunks: memory stays bounded.
An exception in a thread is raised in the consumer's; ``stop`` ends a thread at its next chunk.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator

_END = object()


class _Stage:
    def __init__(self, name: str, depth: int) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def _put(self, item: object) -> bool:
        """Queue ``item`` unless stopped meanwhile (a full queue never blocks a stop)."""
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def stop(self) -> None:
        """The consumer is done, or failed: the thread ends at its next chunk."""
        self._stopped.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()

    def join(self, timeout: float = 10.0) -> None:
        self._thread.join(timeout)


class Prefetch(_Stage):
    """Iterates ``source`` in a thread, at most ``depth`` chunks ahead of the consumer."""

    def __init__(self, source: Iterator[bytes], depth: int = 2) -> None:
        super().__init__("oauthcc-body-reader", depth)
        self._source = source
        self._thread.start()

    def _run(self) -> None:
        try:
            for chunk in self._source:
                if not self._put(chunk):
                    return
            self._put(_END)
        except BaseException as exc:
            self._put(exc)

    def __iter__(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            yield item


class BackgroundWrites(_Stage):
    """Calls ``write`` with each chunk ``put``, in order, in a thread."""

    def __init__(self, write: Callable[[bytes], object], depth: int = 2) -> None:
        super().__init__("oauthcc-body-writer", depth)
        self._write = write
        self._error: BaseException | None = None
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _END:
                return
            try:
                assert isinstance(item, bytes)
                self._write(item)
            except BaseException as exc:
                self._error = exc
                return

    def put(self, chunk: bytes) -> None:
        self._send(chunk)

    def finish(self) -> None:
        """Wait until every chunk is written; raises what a write raised."""
        self._send(_END)
        self._thread.join()
        self._raise_error()

    def _send(self, item: object) -> None:
        while True:
            self._raise_error()
            if not self._thread.is_alive():
                raise RuntimeError("the background writer has stopped")
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def stop(self) -> None:
        super().stop()
        self.join()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error
