"""Fast JSON for pulls: orjson when it is installed, the standard library otherwise.

orjson is imported on first use, not when a DAG file imports the operator. Whatever orjson
cannot do (a number beyond 64 bits, a type it does not know, a body in another encoding than
UTF-8) falls back to the standard library, so the result is what ``json`` gives, only faster.
One difference remains in what is written: orjson writes ``1e-7`` where ``json`` writes
``1e-07`` (the same number).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from types import ModuleType
from typing import Any

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# orjson reads an integer beyond 64 bits as a float (losing digits): a body with a run of 19
# digits or more (perhaps inside a string) is read by the standard library instead. Found by
# mapping every digit to "9" and everything else to " " (ten times faster than a regex).
_DIGITS_AS_NINES = bytes(57 if 48 <= c <= 57 else 32 for c in range(256))
_LONG_NUMBER = b"9" * 19


@cache
def _orjson() -> ModuleType | None:
    try:
        import orjson
    except ImportError:  # pragma: no cover - a declared dependency; kept for partial installs
        return None
    return orjson


def loads(data: bytes) -> Any:
    """``data`` parsed; raises ``ValueError`` (a ``json.JSONDecodeError``) if it is not JSON."""
    orjson = _orjson()
    if orjson is not None and _LONG_NUMBER not in data.translate(_DIGITS_AS_NINES):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # the standard library may still read it (big numbers, NaN); else its error
    return json.loads(data)


def json_lines(records: Iterable[Any]) -> tuple[bytes, int]:
    """``records`` as JSON Lines (compact, UTF-8, one per line) and how many there were."""
    orjson = _orjson()
    if orjson is None:
        lines = [_encode(record) + "\n" for record in records]
        return "".join(lines).encode(), len(lines)
    dumps = orjson.dumps
    option = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
    if isinstance(records, list):
        try:
            parts = [dumps(record, option=option) for record in records]
            return b"".join(parts), len(parts)
        except TypeError:
            pass  # some record needs the standard library: one at a time below
    parts = []
    for record in records:
        try:
            parts.append(dumps(record, option=option))
        except TypeError:  # orjson.JSONEncodeError: let json encode it, or say why not
            parts.append((_encode(record) + "\n").encode())
    return b"".join(parts), len(parts)
