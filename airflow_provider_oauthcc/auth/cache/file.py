"""FileTokenCache: tokens shared by every task process on one machine.

One encrypted file per cache key, named by a hash of the key, 0600 in a 0700 folder, replaced
atomically. A per-key lock file (``flock``) makes processes on a cold cache fetch once; it is a
separate file because ``os.replace`` swaps the entry's inode, and the kernel drops the lock if
its holder dies.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from airflow_provider_oauthcc.auth.cache import KeyedLocks, Release, TokenCacheError
from airflow_provider_oauthcc.auth.cache.crypto import TokenCipher
from airflow_provider_oauthcc.auth.token import Token

DIR_NAME = "oauthcc-token-cache"
MAX_ENTRY_BYTES = 64 * 1024
DEFAULT_LOCK_TIMEOUT = 60.0

log = logging.getLogger(__name__)
_thread_locks = KeyedLocks()


def default_cache_dir() -> Path:
    """``oauthcc-token-cache`` in the user cache folder (``$XDG_CACHE_HOME``, else
    ``~/.cache``). The Airflow hooks pass Airflow's ``[oauthcc] token_cache_dir`` instead."""
    user_cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(user_cache) / DIR_NAME


class FileTokenCache:
    name = "file"

    def __init__(
        self,
        directory: Path,
        cipher: TokenCipher,
        *,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        self.directory = Path(directory)
        self._cipher = cipher
        self._lock_timeout = lock_timeout
        self._directory_checked = False
        self._held = threading.local()

    def get(self, key: str) -> Token | None:
        blob = self._read(self._path(key, ".token"))
        if blob is None:
            return None
        token = self._cipher.open(key, blob)
        if token is None:
            log.info(
                "Ignoring token cache file %s: it does not decrypt with this connection's "
                "credential (corrupt, or written with another secret); it will be replaced",
                self._path(key, ".token").name,
            )
        return token

    def put(self, key: str, token: Token) -> None:
        self._ensure_directory()
        blob = self._cipher.seal(key, token)
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")  # 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(blob)
            os.replace(temp, self._path(key, ".token"))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def invalidate(self, key: str, token: Token) -> bool:
        # Under the key's lock, so no process can write a new token between compare and delete.
        with self.lock(key):
            current = self.get(key)
            if current is None or current.access_token != token.access_token:
                return False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(key, ".token"))
            return True

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        held: set[str] = self._held.__dict__.setdefault("keys", set())
        if key in held:  # invalidate() inside get_token's lock: this thread already holds it
            yield
            return
        self._ensure_directory()
        path = self._path(key, ".lock")
        deadline = time.monotonic() + self._lock_timeout
        thread_lock = _thread_locks[str(path)]
        if not thread_lock.acquire(timeout=self._lock_timeout):
            raise TokenCacheError(f"timed out after {self._lock_timeout:g} s waiting for a lock")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                _flock(fd, deadline, self._lock_timeout)
                held.add(key)
                try:
                    yield
                finally:
                    held.discard(key)
                    _unflock(fd)
            finally:
                os.close(fd)
        finally:
            thread_lock.release()

    def try_lock(self, key: str) -> Release | None:
        self._ensure_directory()
        path = self._path(key, ".lock")
        thread_lock = _thread_locks[str(path)]
        if not thread_lock.acquire(blocking=False):
            return None
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except BaseException:
            thread_lock.release()
            raise
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            thread_lock.release()
            return None

        def release() -> None:
            try:
                _unflock(fd)
            finally:
                os.close(fd)
                thread_lock.release()

        return release

    def _path(self, key: str, suffix: str) -> Path:
        return self.directory / (hashlib.sha256(key.encode()).hexdigest()[:40] + suffix)

    def _ensure_directory(self) -> None:
        if self._directory_checked:
            return
        check_ancestors(self.directory)  # before makedirs, which would follow a planted link
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        check_ancestors(self.directory)
        info = os.lstat(self.directory)
        if stat.S_ISLNK(info.st_mode):
            # Whoever can point it elsewhere could read or plant entries: refused, like files.
            raise TokenCacheError(f"{self.directory} is a symbolic link; give the real folder")
        if not stat.S_ISDIR(info.st_mode):
            raise TokenCacheError(f"{self.directory} is not a folder")
        if info.st_uid != os.getuid():
            raise TokenCacheError(f"{self.directory} belongs to another user")
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.chmod(self.directory, 0o700)
        self._directory_checked = True

    def _read(self, path: Path) -> bytes | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return b""  # a symlink planted in our place: foreign, replaced on the next put
            raise TokenCacheError(f"cannot read {path.name}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
                return b""  # not ours: treated as foreign, replaced on the next put
            return handle.read(MAX_ENTRY_BYTES + 1)


def check_ancestors(directory: Path) -> None:
    """Refuse a cache folder that another user could move or swap: every existing folder above
    it must be a real folder (no symbolic link), owned by root or by this user, and not
    writable by others unless sticky (a root-owned, sticky ``/tmp`` is fine: others cannot
    rename or delete what they do not own there). Group-writable folders are accepted:
    Airflow's container image makes its folders group-writable for arbitrary user IDs."""
    me = os.getuid()
    for folder in reversed(directory.parents):
        try:
            info = os.lstat(folder)
        except FileNotFoundError:
            return  # made by this process with makedirs, checked again after
        if stat.S_ISLNK(info.st_mode):
            raise TokenCacheError(
                f"{folder}, in the path of {directory}, is a symbolic link; give the real path"
            )
        if not stat.S_ISDIR(info.st_mode):
            raise TokenCacheError(f"{folder}, in the path of {directory}, is not a folder")
        if info.st_uid not in (0, me):
            raise TokenCacheError(
                f"{folder}, in the path of {directory}, belongs to another user, who could "
                "replace the cache folder"
            )
        if info.st_mode & stat.S_IWOTH and not info.st_mode & stat.S_ISVTX:
            raise TokenCacheError(
                f"{folder}, in the path of {directory}, is writable by every user and not "
                "sticky: anyone could replace the cache folder"
            )


def _flock(fd: int, deadline: float, timeout: float) -> None:
    import fcntl

    pause = 0.002
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise TokenCacheError(
                    f"timed out after {timeout:g} s waiting for another process's lock"
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


def _unflock(fd: int) -> None:
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)
