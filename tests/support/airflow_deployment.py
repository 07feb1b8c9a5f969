"""A small real Airflow deployment for end-to-end tests: ``airflow api-server``, ``scheduler``,
``dag-processor`` and ``triggerer`` as separate processes over one throwaway AIRFLOW_HOME
(SQLite, LocalExecutor: Airflow 3 accepts the pair, as ``airflow standalone`` uses it).

Each process logs to its own file in the home; ``cli()`` runs the ``airflow`` CLI against the
same database. Stop it with ``stop()`` (every process group is terminated, then killed).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import requests

from tests.support.airflow_api_server import AIRFLOW, _clean_environment, _fernet_key, _free_port

START_TIMEOUT = 240.0


class AirflowDeployment:
    def __init__(self, dags_folder: Path, env: Mapping[str, str]) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="oauthcc-deployment-"))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = _clean_environment()
        self.env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "8",
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "64",
                "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API_AUTH__JWT_SECRET": "oauthcc-e2e-jwt-secret-0123456789abcdef",
                "AIRFLOW__API_AUTH__JWT_ISSUER": "oauthcc-e2e",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                # A loaded 2-core test machine can delay a task's heartbeats by minutes; the
                # scheduler must not fail such a task as a zombie (that tests Airflow, not us).
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "900",
                "AIRFLOW__SCHEDULER__SCHEDULER_ZOMBIE_TASK_THRESHOLD": "900",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                **env,
            }
        )
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> AirflowDeployment:
        migrate = self.cli("db", "migrate", timeout=START_TIMEOUT)
        if migrate.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{migrate.stderr[-3000:]}")
        self._spawn("api-server", "--host", "127.0.0.1", "--port", str(self.port), "-w", "1")
        self._spawn("scheduler")
        self._spawn("dag-processor")
        self._spawn("triggerer")
        self._wait_until_healthy(time.monotonic() + START_TIMEOUT)
        return self

    def kill(self, command: str) -> None:
        """SIGKILL one process group (a crash, an OOM kill): it cleans nothing up."""
        process = self._processes.pop(command)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def restart(self, command: str, *args: str) -> None:
        """Start ``command`` again (after ``kill``), its log appended to the first one's."""
        self._spawn(command, *args, append=True)

    def _spawn(self, command: str, *args: str, append: bool = False) -> None:
        with (self.home / f"{command}.log").open("ab" if append else "wb") as log:
            self._processes[command] = subprocess.Popen(
                [AIRFLOW, command, *args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_until_healthy(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if requests.get(f"{self.url}/api/v2/monitor/health", timeout=5).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"airflow api-server not healthy in time:\n{self.log('api-server')}")

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Rows of the deployment's metadata database (SQLite, read-only)."""
        with sqlite3.connect(f"file:{self.home / 'airflow.db'}?mode=ro", uri=True) as db:
            return db.execute(sql, args).fetchall()

    def wait_for(self, what: str, check: Callable[[], Any], within: float) -> Any:
        """``check()``'s first truthy result, polled each second while every process lives;
        an AssertionError with the scheduler's and triggerer's logs after ``within`` s."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            self.check_alive()
            result = check()
            if result:
                return result
            time.sleep(1.0)
        raise AssertionError(
            f"{what} not within {within:.0f} s\n--- scheduler\n{self.log('scheduler')}"
            f"\n--- triggerer\n{self.log('triggerer')}"
        )

    def check_alive(self) -> None:
        for name, process in self._processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"airflow {name} exited:\n{self.log(name)}")

    def log(self, command: str, chars: int = 4000) -> str:
        path = self.home / f"{command}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def full_log(self, command: str) -> str:
        path = self.home / f"{command}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [AIRFLOW, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def cli_json(self, *args: str) -> Any:
        result = self.cli(*args, "-o", "json")
        if result.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed: {result.stderr[-2000:]}")
        start = result.stdout.index("[")
        return json.loads(result.stdout[start:])

    def stop(self) -> None:
        for process in self._processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self._processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self._processes.clear()
        shutil.rmtree(self.home, ignore_errors=True)
