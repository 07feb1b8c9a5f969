"""Counting the records of a streamed answer as its chunks pass, in constant memory.

A chunk boundary may fall anywhere: inside a line, between ``\\r`` and ``\\n``, inside a quoted
CSV field. The counters keep the little state that needs (is the current line non-empty, is
the CSV reader inside quotes) and never hold more than the chunk they are given.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator

# A line feed that ends an empty line (or one holding only "\r") after it. One regular
# expression search finds whether there is one faster than two bytes.find calls do.
_EMPTY_LINE = re.compile(rb"\n\r?\n")
_EMPTY_LINE_AFTER = re.compile(rb"\n(?=\r?\n)")
_QUOTE = 0x22
_CR = 0x0D


class LineCounter:
    """Counts non-empty lines (``\\n`` or ``\\r\\n`` endings); the last may lack its newline.

    A line holding nothing, or only ``\\r``, is not counted: a blank line between records or
    at the end of an NDJSON export is not a record.
    """

    def __init__(self) -> None:
        self.lines = 0
        # The line in progress (started in an earlier chunk or span) has content.
        self._open = False
        # The line in progress is exactly "\r" so far (a CRLF split across chunks).
        self._lone_cr = False

    def feed(self, data: bytes, start: int = 0, end: int | None = None) -> None:
        """Count the lines ended in ``data[start:end]`` (no copy of it is made)."""
        end = len(data) if end is None else end
        if start >= end:
            return
        first = data.find(b"\n", start, end)
        if first < 0:
            self._extend(data, start, end)
            return
        last = data.rfind(b"\n", start, end)
        self._extend(data, start, first)
        if self._open:
            self.lines += 1
        middle = data.count(b"\n", first + 1, last + 1)  # lines ended after the first
        if middle:
            empty = 0
            if _EMPTY_LINE.search(data, first, last + 1):  # rare: only then are they counted
                empty = len(_EMPTY_LINE_AFTER.findall(data, first, last + 1))
            self.lines += middle - empty
        self._open = self._lone_cr = False
        self._extend(data, last + 1, end)

    def _extend(self, data: bytes, start: int, end: int) -> None:
        """The line in progress grows by ``data[start:end]``, which holds no line feed."""
        if start >= end or self._open:
            return
        if end - start == 1 and data[start] == _CR and not self._lone_cr:
            self._lone_cr = True
            return
        self._open = True

    def finish(self) -> int:
        """The count, with a last line that has no newline."""
        if self._open:
            self.lines += 1
            self._open = False
        return self.lines


class NdjsonCounter:
    """Records of NDJSON / JSON Lines: its non-empty lines."""

    def __init__(self) -> None:
        self._lines = LineCounter()

    @property
    def so_far(self) -> int:
        return self._lines.lines

    def feed(self, data: bytes) -> None:
        self._lines.feed(data)

    def finish(self) -> int:
        return self._lines.finish()


class CsvRowCounter:
    """Rows of a CSV body without its header row (RFC 4180 quoting: a newline inside a quoted
    field is not a row's end, ``""`` is a quote inside one)."""

    def __init__(self) -> None:
        self._lines = LineCounter()
        self._quoted = False

    @property
    def so_far(self) -> int:
        return max(self._lines.lines - 1, 0)

    def feed(self, data: bytes) -> None:
        position, end = 0, len(data)
        while position < end:
            quote = data.find(b'"', position)
            stop = end if quote < 0 else quote
            if self._quoted:
                self._lines.feed(b"x")  # the quoted text is content of the row in progress
            else:
                self._lines.feed(data, position, stop)
            if quote < 0:
                return
            self._lines.feed(b"x")  # the quote itself
            self._quoted = not self._quoted
            position = quote + 1

    def finish(self) -> int:
        return max(self._lines.finish() - 1, 0)


class Gunzip:
    """Decompresses a gzip stream (one or more members) chunk by chunk, each output piece at
    most ``piece`` bytes: a small chunk that expands a thousandfold is never held whole."""

    def __init__(self, piece: int = 1024 * 1024) -> None:
        self.piece = piece
        self._decoder = zlib.decompressobj(wbits=31)
        self._in_member = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        while True:
            if data:
                self._in_member = True
            out = self._decoder.decompress(data, self.piece)
            if out:
                yield out
            if self._decoder.eof:  # the next member, if any, starts a new stream
                data = self._decoder.unused_data
                self._decoder = zlib.decompressobj(wbits=31)
                self._in_member = False
                if not data:
                    return
                continue
            data = self._decoder.unconsumed_tail
            if not data and len(out) < self.piece:
                return

    def finish(self) -> None:
        """Raises ``EOFError`` when the stream stopped inside a member (cut short)."""
        if self._in_member:
            raise EOFError("the gzip stream ended before the end of its last member")
