"""FileTokenCache: encrypted 0600 files in a 0700 folder, cross-process lock, compare-before-delete."""

from __future__ import annotations

import fcntl
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from airflow_provider_oauthcc.auth.cache import TokenCacheError
from airflow_provider_oauthcc.auth.cache.crypto import TokenCipher
from airflow_provider_oauthcc.auth.cache.file import FileTokenCache, default_cache_dir

from .cache_support import SECRET, config, token

KEY = config().cache_key


def cache_in(directory: Path, secret: str = SECRET, **kwargs: float) -> FileTokenCache:
    return FileTokenCache(directory, TokenCipher(secret.encode()), **kwargs)


def entry_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.token"))


def test_put_get_modes_and_no_clear_text(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    cache = cache_in(directory)
    original = token("tok-secret-in-file-0042")
    cache.put(KEY, original)

    assert cache.get(KEY) == original
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    (entry,) = entry_files(directory)
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    raw = entry.read_bytes()
    for clear in (b"tok-secret-in-file-0042", SECRET.encode(), b"app", b"idp.example.com"):
        assert clear not in raw
    # The name is a hash: it does not reveal the client or the endpoint either.
    assert "app" not in entry.name and "idp" not in entry.name
    assert not list(directory.glob(".*.tmp"))  # no temp file left behind


def test_lock_file_is_0600_and_existing_folder_is_tightened(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o755)
    os.chmod(directory, 0o755)
    cache = cache_in(directory)
    with cache.lock(KEY):
        pass
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    (lock_file,) = directory.glob("*.lock")
    assert stat.S_IMODE(lock_file.stat().st_mode) == 0o600


def test_missing_folder_or_entry_is_a_miss(tmp_path: Path) -> None:
    assert cache_in(tmp_path / "not-yet").get(KEY) is None
    assert cache_in(tmp_path).get(KEY) is None


@pytest.mark.parametrize(
    "content", [b"", b"garbage", b"oauthcc-1:" + b"\0" * 64, os.urandom(70_000)]
)
def test_corrupt_entry_is_ignored_then_replaced(tmp_path: Path, content: bytes) -> None:
    cache = cache_in(tmp_path)
    cache.put(KEY, token())
    (entry,) = entry_files(tmp_path)
    entry.write_bytes(content)

    assert cache.get(KEY) is None
    fresh = token("tok-replacement-0001")
    cache.put(KEY, fresh)
    assert cache.get(KEY) == fresh


def test_entry_of_another_secret_or_key_is_ignored(tmp_path: Path) -> None:
    cache_in(tmp_path, secret="rotated-old-secret").put(KEY, token("tok-old"))
    assert cache_in(tmp_path).get(KEY) is None

    other_key = config(scope="write").cache_key
    cache = cache_in(tmp_path)
    cache.put(other_key, token("tok-other-scope"))
    # An entry moved under another key's name does not decrypt (the key is authenticated).
    os.replace(cache._path(other_key, ".token"), cache._path(KEY, ".token"))
    assert cache.get(KEY) is None


def test_symlink_in_place_of_an_entry_is_not_followed(tmp_path: Path) -> None:
    cache = cache_in(tmp_path / "c")
    cache.put(KEY, token())
    target = tmp_path / "elsewhere"
    target.write_bytes(b"keep me")
    entry = cache._path(KEY, ".token")
    entry.unlink()
    entry.symlink_to(target)

    assert cache.get(KEY) is None
    replacement = token("tok-new")
    cache.put(KEY, replacement)
    assert target.read_bytes() == b"keep me"
    assert not entry.is_symlink() and cache.get(KEY) == replacement


def test_invalidate_compares_before_delete(tmp_path: Path) -> None:
    cache = cache_in(tmp_path)
    old, new = token("tok-old-0001"), token("tok-new-0002")
    cache.put(KEY, new)

    assert cache.invalidate(KEY, old) is False
    assert cache.get(KEY) == new
    assert cache.invalidate(KEY, new) is True
    assert cache.get(KEY) is None and entry_files(tmp_path) == []
    assert cache.invalidate(KEY, new) is False


def test_invalidate_inside_the_lock_does_not_deadlock(tmp_path: Path) -> None:
    cache = cache_in(tmp_path, lock_timeout=2.0)
    current = token()
    cache.put(KEY, current)
    with cache.lock(KEY):
        assert cache.invalidate(KEY, current) is True


def test_lock_excludes_threads_and_other_cache_instances(tmp_path: Path) -> None:
    inside = 0
    most = 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        with cache_in(tmp_path).lock(KEY):
            with guard:
                inside += 1
                most = max(most, inside)
            time.sleep(0.01)
            with guard:
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 1


def test_lock_held_elsewhere_times_out_with_a_cache_error(tmp_path: Path) -> None:
    cache = cache_in(tmp_path, lock_timeout=0.2)
    with cache.lock(KEY):
        pass
    (lock_file,) = tmp_path.glob("*.lock")
    # Another open file description, as another process would have.
    with open(lock_file, "rb") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        started = time.monotonic()
        with pytest.raises(TokenCacheError, match="timed out"), cache.lock(KEY):
            pass
        assert 0.15 < time.monotonic() - started < 2.0


def test_unusable_folder_raises_cache_error_or_os_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises((OSError, TokenCacheError)):
        cache_in(blocker / "cache").put(KEY, token())


def test_default_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The core's own default is the user cache folder; AIRFLOW_HOME is the Airflow hooks'
    # business (through Airflow's configuration: tests/integration/test_cache_dir_config.py).
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "oauthcc-token-cache"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert default_cache_dir() == tmp_path / "user" / ".cache" / "oauthcc-token-cache"


# -- the folders above the cache folder --------------------------------------------------------


def test_a_symbolic_link_anywhere_in_the_path_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    cache = cache_in(tmp_path / "link" / "tokens")

    with pytest.raises(TokenCacheError, match=r"link, in the path of .* symbolic link"):
        cache.put(KEY, token())
    assert list(real.iterdir()) == []  # nothing made behind the link


def test_a_folder_above_that_anyone_may_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    cache = cache_in(shared / "tokens")

    with pytest.raises(TokenCacheError, match="writable by every user and not sticky"):
        cache.put(KEY, token())
    assert not (shared / "tokens").exists()


def test_a_sticky_folder_above_is_accepted_as_tmp_is(tmp_path: Path) -> None:
    assert os.stat("/tmp").st_mode & stat.S_ISVTX  # the usual root-owned, sticky /tmp
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    cache = cache_in(sticky / "tokens")
    original = token("tok-under-sticky")
    cache.put(KEY, original)
    assert cache.get(KEY) == original


def test_a_folder_above_owned_by_another_user_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    if os.getuid() == 0:
        os.chown(theirs, 4242, 4242)
    else:  # tmp_path's folders are this user's: seen as another user's by another uid
        uid = os.getuid() + 1
        monkeypatch.setattr(os, "getuid", lambda: uid)
    cache = cache_in(theirs / "tokens")

    with pytest.raises(TokenCacheError, match=r"in the path of .* belongs to another user"):
        cache.put(KEY, token())
    assert not (theirs / "tokens").exists()
