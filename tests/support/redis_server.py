"""A real Redis server (Debian's ``redis-server``) on a free loopback port, for the cache tests.

Import the fixtures into a test module: ``from tests.support.redis_server import redis_url``.
If ``redis-server`` is not installed the tests fail and say how to install it; they never skip.

``RedisServer(tls=pki)`` serves TLS only (a ``devserver.pki.DevPKI``: its server certificate,
clients not asked for one); ``RedisServer(password=...)`` requires AUTH (``requirepass``).
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from devserver.pki import DevPKI

INSTALL_HINT = (
    "redis-server is not installed: the shared-cache tests need a real Redis. Install it with "
    "`apt-get install -y redis-server` (make test does this through "
    "scripts/ensure-system-packages.sh)"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# redis-server cannot bind port 0 and report it: pick a free port, and pick again when another
# process took it before redis-server bound it (stages of `make test` run side by side).
START_ATTEMPTS = 5


class RedisServer:
    def __init__(self, *, tls: DevPKI | None = None, password: str | None = None) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError(INSTALL_HINT)
        self.tls = tls
        self.password = password
        self._dir = tempfile.TemporaryDirectory(prefix="oauthcc-redis-")
        self._log = Path(self._dir.name) / "redis.log"
        for _ in range(START_ATTEMPTS):
            self.port = free_port()
            self._process = self._start(executable)
            if self._wait_until_ready():
                return
        self.stop()
        raise RuntimeError(f"redis-server found no free port in {START_ATTEMPTS} attempts")

    def _start(self, executable: str) -> subprocess.Popen[bytes]:
        options: list[str] = ["--port", str(self.port)]
        if self.tls is not None:
            options = [
                "--port",
                "0",
                "--tls-port",
                str(self.port),
                "--tls-cert-file",
                str(self.tls.server.cert),
                "--tls-key-file",
                str(self.tls.server.key),
                "--tls-ca-cert-file",
                str(self.tls.ca_cert),
                "--tls-auth-clients",
                "no",
            ]
        if self.password is not None:
            options += ["--requirepass", self.password]
        self._log.unlink(missing_ok=True)
        return subprocess.Popen(
            [
                executable,
                *options,
                "--bind",
                "127.0.0.1",
                "--dir",
                self._dir.name,
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--logfile",
                str(self._log),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls is not None else "redis"
        auth = f":{self.password}@" if self.password is not None else ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}/0"

    def client(self, db: int = 0) -> Any:
        """A redis-py client of database ``db`` (TLS trusting the CA, AUTH with the password)."""
        import redis

        url = f"{self.url.rsplit('/', 1)[0]}/{db}"
        if self.tls is None:
            return redis.Redis.from_url(url)
        return redis.Redis.from_url(url, ssl_ca_certs=str(self.tls.ca_cert))

    def _ping(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as raw:
            sock: socket.socket = raw
            if self.tls is not None:
                context = ssl.create_default_context(cafile=str(self.tls.ca_cert))
                sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
            sock.sendall(b"PING\r\n")
            # Without AUTH a password-protected server answers NOAUTH: it is up all the same.
            return sock.recv(16).startswith((b"+PONG", b"-NOAUTH"))

    def _wait_until_ready(self, timeout: float = 10.0) -> bool:
        """True once this server answers; False if another process had taken its port. The
        log says the server is ready before the ping: a ping alone could reach another
        process's Redis on that port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self._log.read_text(errors="replace") if self._log.exists() else ""
            if self._process.poll() is not None:
                if "Address already in use" in log:
                    return False
                raise RuntimeError(f"redis-server exited at start:\n{log[-2000:]}")
            try:
                if "Ready to accept connections" in log and self._ping():
                    return True
            except OSError:
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout} s")

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._dir.cleanup()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    try:
        server = RedisServer()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    from airflow_provider_oauthcc.auth.cache.redis import close_clients

    close_clients()
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The URL of an empty Redis database."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url
