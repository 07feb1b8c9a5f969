"""Output to object storage that appears at its final path only when complete.

``AtomicWriter`` writes bytes, ``JsonLinesWriter`` records as JSON Lines (a pull's pages);
``pull.stream`` writes one large answer through ``AtomicWriter`` as it arrives.

Output is written to a hidden temporary sibling of the final path
(``.<name>.<random>.partial``) and moved into place on success; on failure the temporary file
is deleted. A failed pull therefore never leaves a partial file at the final path, a retried
pull never a duplicated one, and a failed re-run keeps the previous complete file.

On a local file system the move is an atomic rename. Object stores (S3, GCS, ...) have no
rename: the temporary object is copied to the final key, then deleted, and the final object
still only appears once complete (tested against a local S3, moto's server mode). On S3 an
attempt killed with SIGKILL leaves no temporary object but, past s3fs's first block (50 MiB),
an unfinished multipart upload of it: the next attempt aborts that, as it deletes a stale file.

Writes go straight to the file system's file object (one write per page or chunk), not through
``ObjectStoragePath.open``, whose wrapper reports hook lineage on every write and for the
temporary path; the final path is reported once, when it is published. ``abort`` (a task's
``on_kill``) discards the temporary output from another thread, multipart upload included.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from airflow_provider_oauthcc.airflow_compat import ObjectStoragePath

log = logging.getLogger(__name__)


class OutputAborted(RuntimeError):
    """The writer was aborted (the task is being stopped): nothing is published."""


def _partial_name(name: str, owner: str) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(name)}\.{re.escape(owner)}-[0-9a-f]{{12}}\.partial")


def as_storage_path(target: ObjectStoragePath | str) -> ObjectStoragePath:
    """An ``ObjectStoragePath`` from a path or a URI (``file://``, ``s3://conn_id@bucket/...``)."""
    from airflow_provider_oauthcc.airflow_compat import ObjectStoragePath

    if isinstance(target, ObjectStoragePath):
        return target
    if not isinstance(target, str) or not target.strip():
        raise ValueError(f"output must be an ObjectStoragePath or a URI string, got {target!r}")
    try:
        return ObjectStoragePath(target.strip())
    except (TypeError, ValueError) as exc:
        # universal-pathlib 0.3 made its protocol check strict; Airflow 3.0's ObjectStoragePath
        # predates it and is refused every local path. pip picks 0.3 without Airflow's
        # constraints file.
        if type(exc).__name__ == "_IncompatibleProtocolError":
            raise IncompatibleStorageLibraryError(target.strip()) from None
        raise


class IncompatibleStorageLibraryError(ValueError):
    """The installed universal-pathlib is too new for this Airflow's ObjectStoragePath."""

    def __init__(self, target: str) -> None:
        from importlib.metadata import PackageNotFoundError, version

        def installed(name: str) -> str:
            try:
                return version(name)
            except PackageNotFoundError:
                return "?"

        scheme = target.split("://", 1)[0] if "://" in target else "file"
        super().__init__(
            f"cannot write the output ({scheme}://...): Airflow {installed('apache-airflow')}'s "
            f"ObjectStoragePath does not work with universal-pathlib "
            f"{installed('universal-pathlib')}, which refuses its {scheme}:// paths. Install "
            "universal-pathlib<0.3 (pip install 'universal-pathlib<0.3'), or install Airflow "
            "with its constraints file as Airflow recommends (see the provider's README, "
            "Install)"
        )


class AtomicWriter:
    """Writes bytes to ``target`` atomically; use it as a context manager.

    ``bytes`` counts what was written. Leaving the ``with`` block normally publishes the file
    at ``target``; leaving it with an exception, or after ``abort``, discards it.
    """

    def __init__(self, target: ObjectStoragePath | str, *, owner: str | None = None) -> None:
        """``owner`` names the writer across attempts (a task instance): the temporary files
        that earlier attempts of the same owner left behind are removed on open."""
        self.target = as_storage_path(target)
        self.owner = owner
        self.partial = self._new_partial()
        self.bytes = 0
        self.aborted = False
        self._file: IO[bytes] | None = None
        self._lock = threading.Lock()

    def _new_partial(self) -> ObjectStoragePath:
        stem = f".{self.target.name}.{self.owner}-" if self.owner else f".{self.target.name}."
        return self.target.parent / f"{stem}{secrets.token_hex(6)}.partial"

    def __enter__(self) -> Self:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self._remove_stale_partials()
        self._file = self.target.fs.open(self.partial.path, "wb")
        return self

    def _remove_stale_partials(self) -> None:
        """Temporary files that earlier attempts of this owner could not delete (a worker
        killed with SIGKILL): Airflow runs one attempt of a task instance at a time, so they
        are stale. Other writers' files, to this target too, are left alone."""
        if self.owner is None:
            return
        fs, parent = self.target.fs, self.target.parent.path
        stale = _partial_name(self.target.name, self.owner)
        try:
            names = fs.ls(parent, detail=False)
        except FileNotFoundError:
            names = []
        for name in names:
            if stale.fullmatch(str(name).rstrip("/").rsplit("/", 1)[-1]):
                log.info("Removing the temporary file of an earlier, interrupted attempt: %s", name)
                _remove(fs, name)
        _abort_stale_uploads(fs, parent, f".{self.target.name}.{self.owner}-", stale)

    def write_bytes(self, data: bytes) -> int:
        """Append ``data``; returns the bytes written."""
        file = self._open_file()
        file.write(data)
        self.bytes += len(data)
        return len(data)

    def restart(self) -> None:
        """Discard what was written so far and go on in a new temporary file (a retry of an
        answer that broke off: its first bytes are not kept)."""
        with self._lock:
            file, self._file = self._file, None
            if self.aborted:
                raise OutputAborted(f"the output to {self.target} was aborted")
        self._discard(file, abort_upload=True)
        self.partial = self._new_partial()
        self.bytes = 0
        file = self.target.fs.open(self.partial.path, "wb")
        with self._lock:
            if not self.aborted:
                self._file, file = file, None
        if file is not None:  # aborted meanwhile
            self._discard(file, abort_upload=True)
            raise OutputAborted(f"the output to {self.target} was aborted")

    def _open_file(self) -> IO[bytes]:
        file = self._file
        if file is None:
            if self.aborted:
                raise OutputAborted(f"the output to {self.target} was aborted")
            raise RuntimeError(f"{type(self).__name__} is not open; use it in a with block")
        return file

    def abort(self) -> None:
        """Discard the temporary output now and publish nothing; callable from any thread.

        A multipart upload in progress (S3) is aborted rather than completed.
        """
        with self._lock:
            self.aborted = True
            file, self._file = self._file, None
        self._discard(file, abort_upload=True)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._lock:
            file, self._file = self._file, None
            aborted = self.aborted
        if exc_type is not None:
            self._discard(file, abort_upload=True)  # never completes an upload of a partial
            return
        if aborted:
            raise OutputAborted(f"the output to {self.target} was aborted; nothing was published")
        try:
            if file is not None:
                file.close()
            _move(self.target.fs, self.partial.path, self.target.path)
        except BaseException:
            self._discard(None)
            raise
        _report_output(self.target)

    def _discard(self, file: IO[bytes] | None, *, abort_upload: bool = False) -> None:
        if file is not None and abort_upload:
            try:
                file.discard()  # type: ignore[attr-defined]  # fsspec: abort a multipart upload
            except Exception:
                log.debug("No upload to abort for %s", self.partial, exc_info=True)
        try:
            if file is not None:
                file.close()
        except Exception:
            if not abort_upload:
                raise
            # closing a discarded upload may fail; the partial is removed below
            log.debug("Closing the aborted output %s failed", self.partial, exc_info=True)
        finally:
            try:
                _remove(self.target.fs, self.partial.path)
            except Exception:
                log.warning("Could not delete the temporary file %s", self.partial, exc_info=True)


class JsonLinesWriter(AtomicWriter):
    """Writes records as JSON Lines to ``target`` atomically; ``records`` counts them."""

    def __init__(self, target: ObjectStoragePath | str, *, owner: str | None = None) -> None:
        super().__init__(target, owner=owner)
        self.records = 0

    def write(self, records: Iterable[Any]) -> int:
        """Append records, one JSON document per line; returns the bytes written."""
        from airflow_provider_oauthcc.pull.json_codec import json_lines

        self._open_file()
        data, count = json_lines(records)
        if not count:
            return 0
        self.write_bytes(data)
        self.records += count
        return len(data)


def _move(fs: Any, source: str, destination: str) -> None:
    """Move one file. A file system's own ``mv`` (a rename on a local disk) when it has one;
    otherwise copy then delete that one file: fsspec's generic ``mv`` (S3, GCS, ...) expands
    ``[``, ``*`` and ``?`` in the paths as glob patterns, and an object key is a name."""
    if getattr(type(fs).mv, "__qualname__", "") != "AbstractFileSystem.mv":
        fs.mv(source, destination)
        return
    fs.cp_file(source, destination)
    _remove(fs, source)


def _remove(fs: Any, path: str) -> None:
    """Delete one file, gone already or not; ``path`` is a name, never a glob pattern (fsspec's
    ``rm`` expands one, and on S3 through a listing cache that may predate the file)."""
    with contextlib.suppress(FileNotFoundError):
        fs.rm_file(path)


def _abort_stale_uploads(fs: Any, parent: str, stem: str, stale: re.Pattern[str]) -> None:
    """S3 (s3fs): an attempt killed after its first block (50 MiB by default) left a multipart
    upload of its temporary key, which no listing of objects shows but the bucket stores (and
    bills) until it is aborted. Abort the ones of this owner's temporary keys in ``parent``."""
    call_s3 = getattr(fs, "call_s3", None)
    split_path = getattr(fs, "split_path", None)
    if call_s3 is None or split_path is None:
        return
    bucket, folder, _ = split_path(parent)
    prefix = f"{folder.rstrip('/')}/{stem}" if folder else stem
    try:
        _abort_uploads(call_s3, bucket, prefix, stale)
    except Exception as exc:  # a cleanup: the pull goes on without it
        # Needs s3:ListBucketMultipartUploads and s3:AbortMultipartUpload, which a write-only
        # policy may not grant; a bucket lifecycle rule (AbortIncompleteMultipartUpload) does
        # the same.
        log.warning(
            "Could not clean up unfinished uploads that earlier attempts left in s3://%s/%s "
            "(a bucket lifecycle rule AbortIncompleteMultipartUpload does it too): %s",
            bucket,
            prefix,
            exc,
        )


def _abort_uploads(call_s3: Any, bucket: str, prefix: str, stale: re.Pattern[str]) -> None:
    markers: dict[str, str] = {}
    while True:
        page = call_s3("list_multipart_uploads", Bucket=bucket, Prefix=prefix, **markers)
        for upload in page.get("Uploads", []):
            key = upload["Key"]
            if key.startswith(prefix) and stale.fullmatch(key.rsplit("/", 1)[-1]):
                log.info(
                    "Aborting the upload of an earlier, interrupted attempt: %s/%s", bucket, key
                )
                with contextlib.suppress(FileNotFoundError):  # aborted meanwhile
                    call_s3(
                        "abort_multipart_upload",
                        Bucket=bucket,
                        Key=key,
                        UploadId=upload["UploadId"],
                    )
        if not page.get("IsTruncated"):
            return
        markers = {
            "KeyMarker": page["NextKeyMarker"],
            "UploadIdMarker": page["NextUploadIdMarker"],
        }


def _report_output(target: ObjectStoragePath) -> None:
    """Hook-level lineage: the published path is this task's output (once, the final path)."""
    from airflow_provider_oauthcc.airflow_compat import get_hook_lineage_collector

    get_hook_lineage_collector().add_output_asset(context=target, uri=str(target))
