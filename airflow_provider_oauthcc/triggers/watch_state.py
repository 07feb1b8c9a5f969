"""Where a watcher keeps the cursor it has announced, so that a restart resumes from it.

A triggerer restart, or a watcher moving to another triggerer, starts the trigger again from
its serialized arguments: without a stored cursor it would announce again what it already
announced, or, started from "now", skip what arrived while it was down. The store is the one
the connection's token cache uses, for the same reason: Redis (``cache_redis_conn_id``) when
the connection shares its tokens there, so that any triggerer of the deployment resumes where
another stopped; otherwise a folder on the triggerer's disk (``[oauthcc] watch_state_dir``,
by default ``{AIRFLOW_HOME}/oauthcc-watch-state``), which survives restarts of that machine's
triggerer.

Values are small JSON documents (a cursor, an ETag or a digest: never a token or a body). This
module does not import Airflow; the trigger chooses the store.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

KEY_PREFIX = "oauthcc:watch:"


class WatchStateError(RuntimeError):
    """The store could not be read or written."""


class WatchState(Protocol):
    def load(self, key: str) -> dict[str, Any] | None: ...

    def save(self, key: str, state: dict[str, Any]) -> None: ...


class FileWatchState:
    """One JSON file per watcher in ``folder``, replaced atomically (write, fsync, rename)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def load(self, key: str) -> dict[str, Any] | None:
        try:
            text = self._path(key).read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise WatchStateError(
                f"cannot read the watcher state {self._path(key)}: {exc}"
            ) from None
        return _parse(text, str(self._path(key)))

    def save(self, key: str, state: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=f".{key}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as file:
                json.dump(state, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self._path(key))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise


class RedisWatchState:
    """``oauthcc:watch:<key>`` in Redis, without expiry: shared by every triggerer."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def load(self, key: str) -> dict[str, Any] | None:
        try:
            raw = self.client.get(KEY_PREFIX + key)
        except Exception as exc:
            raise WatchStateError(f"cannot read the watcher state from Redis: {exc}") from None
        if raw is None:
            return None
        return _parse(raw.decode() if isinstance(raw, bytes) else str(raw), KEY_PREFIX + key)

    def save(self, key: str, state: dict[str, Any]) -> None:
        try:
            self.client.set(KEY_PREFIX + key, json.dumps(state))
        except Exception as exc:
            raise WatchStateError(f"cannot write the watcher state to Redis: {exc}") from None


def _parse(text: str, where: str) -> dict[str, Any] | None:
    try:
        state = json.loads(text)
    except ValueError:
        raise WatchStateError(f"the watcher state {where} is not JSON") from None
    return state if isinstance(state, dict) else None
