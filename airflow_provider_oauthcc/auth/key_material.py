"""Keys and certificates given inline (PEM text) or as file paths.

TLS libraries load a client certificate and key from files only, so inline PEM is written once
per process to a private file (0600, in a 0700 folder of this user, removed at exit); a path is
used as given, and read again by the TLS layer whenever it changes.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import stat
import tempfile
import threading
from pathlib import Path

from airflow_provider_oauthcc.auth.errors import OAuthCCConfigError

PEM_MARKER = "-----BEGIN"
MAX_PEM_FILE = 1024 * 1024
_written: set[Path] = set()
_lock = threading.Lock()


def is_pem(value: str) -> bool:
    return PEM_MARKER in value


def read_pem_or_file(field: str, value: str) -> str:
    """The PEM text: ``value`` itself, or the content of the file it names (an absolute
    path); anything else is returned as given, for the key parser to refuse."""
    if is_pem(value) or not is_path(value):
        return value
    path = _path(field, value)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(MAX_PEM_FILE + 1)
    except (OSError, UnicodeDecodeError):
        raise OAuthCCConfigError(field, f"cannot read the PEM file {path}") from None
    if not is_pem(text) or len(text) > MAX_PEM_FILE:
        raise OAuthCCConfigError(field, f"{path} is not a PEM file")
    return text


def pem_path(field: str, value: str) -> str:
    """A file path for ``value``: the path given, or a private file holding the inline PEM."""
    if not is_pem(value):
        path = _path(field, value)
        if not os.path.isfile(path):
            raise OAuthCCConfigError(field, f"file not found: {path}")
        return path
    folder = Path(tempfile.gettempdir()) / f"oauthcc-pem-{os.getuid()}"
    digest = hashlib.sha256(value.encode()).hexdigest()[:32]
    target = folder / f"{os.getpid()}-{digest}.pem"
    with _lock:
        if target not in _written:
            _private_folder(folder)
            fd, temp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")  # 0600
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(value if value.endswith("\n") else value + "\n")
            os.replace(temp, target)
            _written.add(target)
    return str(target)


def is_path(value: str) -> bool:
    return "\n" not in value and os.path.isabs(os.path.expanduser(value))


def _path(field: str, value: str) -> str:
    # A value that is neither PEM nor a plausible path is never quoted: it may be a key.
    if "\n" in value or len(value) > 4096:
        raise OAuthCCConfigError(field, "is neither PEM text (-----BEGIN ...) nor a file path")
    return os.path.expanduser(value)


def _private_folder(folder: Path) -> None:
    os.makedirs(folder, mode=0o700, exist_ok=True)
    info = os.lstat(folder)
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid():
        raise OAuthCCConfigError(
            "client_cert", f"{folder} is not a private folder of this user; cannot write PEM"
        )
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(folder, 0o700)


@atexit.register
def _remove_written() -> None:
    for path in list(_written):
        with contextlib.suppress(OSError):
            path.unlink()
