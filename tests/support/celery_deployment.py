"""A real CeleryExecutor deployment for end-to-end tests, started by the project's own script
(``scripts/celery-deployment.sh``, also behind ``make airflow-celery``): PostgreSQL, a Redis
broker, a token-cache Redis, api-server, scheduler, dag-processor, triggerer and two Celery
workers (``worker-a``, ``worker-b``) with their own AIRFLOW_HOME.

``cli()`` runs the ``airflow`` CLI against the same database; ``query()`` reads it;
``kill_worker()`` SIGKILLs a worker and everything under it, ``restart_worker()`` brings it back
(the lost machine replaced); ``stop_component()`` / ``start_component()`` stop and restart one
part (the token-cache Redis, say) on its port.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from tests.support.airflow_api_server import AIRFLOW, _clean_environment

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "celery-deployment.sh"
WORKERS = ("worker-a", "worker-b")
START_TIMEOUT = 600.0

T = TypeVar("T")


class CeleryDeployment:
    def __init__(self, dags_folder: Path, env: Mapping[str, str]) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="oauthcc-celery-"))
        self.dir = self.base / "deployment"
        self._start_env = _clean_environment()
        self._start_env.update(
            {
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                **env,
            }
        )
        self.env: dict[str, str] = {}
        self.state: dict[str, Any] = {}
        self.start_seconds = 0.0

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> CeleryDeployment:
        started = time.monotonic()
        result = self._script("start", str(self.dir), env=self._start_env, timeout=START_TIMEOUT)
        if result.returncode != 0:
            raise RuntimeError(
                f"scripts/celery-deployment.sh start failed:\n{result.stdout[-3000:]}"
                f"\n{result.stderr[-3000:]}"
            )
        self.start_seconds = time.monotonic() - started
        self.state = json.loads((self.dir / "state.json").read_text())
        self.env = self._load_env()
        return self

    def stop(self) -> None:
        try:
            if (self.dir / "env.sh").exists():
                self._script("stop", str(self.dir), timeout=180)
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def stop_component(self, name: str, *, kill: bool = False) -> None:
        env = {**os.environ, "KILL": "1"} if kill else None
        result = self._script("stop-one", str(self.dir), name, env=env, timeout=60)
        assert result.returncode == 0, result.stderr[-2000:]

    def start_component(self, name: str) -> None:
        # The environment the deployment started with (its connections, AWS_* settings...),
        # not this process's.
        result = self._script("start-one", str(self.dir), name, env=self._start_env, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        self.state = json.loads((self.dir / "state.json").read_text())

    def kill_worker(self, name: str) -> None:
        """SIGKILL the worker and every process under it (its task processes): a machine lost."""
        self.stop_component(name, kill=True)

    def restart_worker(self, name: str, within: float = START_TIMEOUT) -> float:
        """Start a stopped or killed worker again (same hostname and home) and wait until Celery
        says it is ready; returns the seconds that took."""
        started = time.monotonic()
        before = self._ready_lines(name)
        self.start_component(name)
        self.wait_for(
            f"{name} ready again",
            lambda: self.alive(name) and self._ready_lines(name) > before,
            within=within,
        )
        return time.monotonic() - started

    def _ready_lines(self, name: str) -> int:
        """How many times the worker's log says it is ready (the log is appended to)."""
        text = self.log(name, chars=10**8)
        return len(re.findall(rf"{re.escape(name)}@\S* ready", text))

    def _script(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        # The script runs the Airflow of the environment that runs the tests.
        venv = {"OAUTHCC_VENV": str(Path(AIRFLOW).parent.parent)}
        return subprocess.run(
            ["bash", str(SCRIPT), *args],
            env={**(env if env is not None else os.environ), **venv},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def _load_env(self) -> dict[str, str]:
        dump = subprocess.run(
            ["bash", "-c", 'source "$1" && env -0', "-", str(self.dir / "env.sh")],
            env=_clean_environment(),
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout.decode()
        return dict(item.split("=", 1) for item in dump.split("\0") if "=" in item)

    # -- looking inside ---------------------------------------------------------------------
    @property
    def redis_cache_port(self) -> int:
        return int(self.state["redis_cache_port"])

    def pid(self, name: str) -> int | None:
        path = self.dir / "run" / f"{name}.pid"
        return int(path.read_text()) if path.exists() else None

    def alive(self, name: str) -> bool:
        pid = self.pid(name)
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def check_alive(self, names: tuple[str, ...] = ("api-server", "scheduler")) -> None:
        for name in names:
            if not self.alive(name):
                raise RuntimeError(f"{name} exited:\n{self.log(name)}")

    def log(self, name: str, chars: int = 4000) -> str:
        path = self.dir / "logs" / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def worker_home(self, worker: str) -> Path:
        return self.dir / worker / "home"

    def task_logs(self, worker: str, dag_id: str) -> list[Path]:
        """The task log files this worker wrote for a DAG (one per try)."""
        return sorted((self.worker_home(worker) / "logs" / f"dag_id={dag_id}").rglob("*.log"))

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [AIRFLOW, *args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        import psycopg2
        from sqlalchemy.engine import make_url

        url = make_url(self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        with (
            psycopg2.connect(
                host=url.host,
                port=url.port,
                user=url.username,
                password=url.password,
                dbname=url.database,
                connect_timeout=10,
            ) as db,
            db.cursor() as cursor,
        ):
            cursor.execute(sql, args)
            rows: list[tuple[Any, ...]] = cursor.fetchall()
        db.close()
        return rows

    def wait_for(self, what: str, check: Callable[[], T | None], within: float) -> T:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            self.check_alive()
            result = check()
            if result:
                return result
            time.sleep(1.0)
        raise AssertionError(
            f"{what} not within {within:.0f} s\n--- scheduler\n{self.log('scheduler')}"
            + "".join(f"\n--- {w}\n{self.log(w, 2000)}" for w in WORKERS)
        )

    def trigger(self, dag_id: str) -> str:
        result = self.cli("dags", "trigger", dag_id, "-o", "json")
        assert result.returncode == 0, result.stderr[-2000:]
        return run_id_from(result.stdout)

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        rows = self.query(
            "select state from dag_run where dag_id = %s and run_id = %s", dag_id, run_id
        )
        state = rows[0][0] if rows else None
        return state if state in ("success", "failed") else None

    def task_states(self, dag_id: str, run_id: str) -> dict[tuple[str, int], tuple[str, int]]:
        """(task_id, map_index) -> (state, try_number)."""
        rows = self.query(
            "select task_id, map_index, state, try_number from task_instance"
            " where dag_id = %s and run_id = %s",
            dag_id,
            run_id,
        )
        return {(t, m): (s, n) for t, m, s, n in rows}


def run_id_from(trigger_output: str) -> str:
    """The run ID in ``airflow dags trigger -o json`` output (log lines come first)."""
    (line,) = (line for line in trigger_output.splitlines() if line.startswith("[{"))
    return str(json.loads(line)[0]["dag_run_id"])


def running(deployment: CeleryDeployment) -> Iterator[CeleryDeployment]:
    """Start, yield, and stop whatever happens."""
    try:
        yield deployment.start()
    finally:
        deployment.stop()
