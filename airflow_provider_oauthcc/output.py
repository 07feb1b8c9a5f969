"""JSON Lines output to object storage that appears at its final path only when complete.

Records are written page by page to a hidden temporary sibling of the final path
(``.<name>.<random>.partial``) and moved into place on success; on failure the temporary file
is deleted. A failed pull therefore never leaves a partial file at the final path, a retried
pull never a duplicated one, and a failed re-run keeps the previous complete file.

On a local file system the move is an atomic rename. Object stores (S3, GCS, ...) have no
rename: fsspec copies then deletes, and the final object still only appears once complete.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterable
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def as_storage_path(target: ObjectStoragePath | str) -> ObjectStoragePath:
    """An ``ObjectStoragePath`` from a path or a URI (``file://``, ``s3://conn_id@bucket/...``)."""
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    if isinstance(target, ObjectStoragePath):
        return target
    if not isinstance(target, str) or not target.strip():
        raise ValueError(f"output must be an ObjectStoragePath or a URI string, got {target!r}")
    return ObjectStoragePath(target.strip())


class JsonLinesWriter:
    """Writes records as JSON Lines to ``target`` atomically; use it as a context manager.

    ``records`` and ``bytes`` count what was written. Leaving the ``with`` block normally
    publishes the file at ``target``; leaving it with an exception discards it.
    """

    def __init__(self, target: ObjectStoragePath | str) -> None:
        self.target = as_storage_path(target)
        self.partial = self.target.parent / f".{self.target.name}.{secrets.token_hex(6)}.partial"
        self.records = 0
        self.bytes = 0
        self._file: IO[bytes] | None = None

    def __enter__(self) -> Self:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.partial.open("wb")  # type: ignore[no-untyped-call,unused-ignore]
        return self

    def write(self, records: Iterable[Any]) -> int:
        """Append records, one JSON document per line; returns the bytes written."""
        if self._file is None:
            raise RuntimeError("JsonLinesWriter is not open; use it in a with block")
        lines = [_encode(record) for record in records]
        if not lines:
            return 0
        data = ("\n".join(lines) + "\n").encode()
        self._file.write(data)
        self.records += len(lines)
        self.bytes += len(data)
        return len(data)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        file, self._file = self._file, None
        if exc_type is not None:
            self._discard(file)
            return
        try:
            if file is not None:
                file.close()
            self.target.fs.mv(self.partial.path, self.target.path)
        except BaseException:
            self._discard(None)
            raise

    def _discard(self, file: IO[bytes] | None) -> None:
        try:
            if file is not None:
                file.close()
        finally:
            try:
                self.partial.unlink(missing_ok=True)
            except Exception:
                log.warning("Could not delete the temporary file %s", self.partial, exc_info=True)
