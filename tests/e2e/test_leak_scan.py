"""Leak scans: the example DAG and ``airflow connections test`` at DEBUG leak no credential.

Runs, against local authorization servers that record every credential they see:

- ``airflow dags test`` of ``oauthcc_incremental_pull`` as a developer runs it (tasks in the
  CLI process), with a ``client_secret_basic`` connection;
- the same DAG with ``--use-executor`` (Airflow 3.2+): LocalExecutor, the real task supervisor,
  each task in its own process writing its log file under ``AIRFLOW_HOME/logs``, as in a
  deployment; with a ``private_key_jwt`` connection;
- ``airflow connections test`` of a ``private_key_jwt`` connection with DPoP (the server
  demands a nonce), a ``client_secret_jwt``, a workload-identity (``federated_assertion``,
  the assertion read from a file) and a JWT-bearer grant connection.

Logging is at DEBUG everywhere: ``AIRFLOW__LOGGING__LOGGING_LEVEL=DEBUG``, ``--verbose``, and
urllib3, requests and this provider's loggers set to DEBUG by a plugin (task processes) and a
logging config class (CLI processes), since Airflow 3.1 leaves stdlib loggers outside
``airflow.*`` at INFO; the first test checks that their DEBUG lines are in the output. Each DAG
run meets a token-endpoint 503, an API 503 and an API 401 (refresh and replay), so the retry and
refresh paths log too. Every stdout, stderr and task
log file must be free of the client secrets (also as Basic credentials), the private key (whole
and each base64 line), every client assertion, DPoP proof and access token (whole and per segment),
and of any JWT issued by or for the local servers.

One kind of line is set aside, in the in-process run only: Airflow's in-process supervisor (``dags test`` without an
executor, 3.1 to 3.3 at least) logs each value handed to ``mask_secret`` at DEBUG, as
``Sending request ... msg=MaskSecret(value=...)``, connection passwords and extras included.
That is Airflow's line, not ours; the executor run shows that the real supervisor does not.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from devserver import DevServer
from devserver.clients import build_federated_client, build_jwt_bearer_client
from devserver.federation import PlatformIssuer
from devserver.keys import generate_private_key_pem
from tests.support.connections import conn_json
from tests.support.leak_scan import (
    ANSI_ESCAPE,
    Leak,
    Secret,
    find_leaks,
    jwt_parts,
    pem_material,
    read_texts,
    secrets_seen_by,
)
from tests.support.stage import airflow_3_0_dags_test_gap

pytestmark = [pytest.mark.e2e, airflow_3_0_dags_test_gap()]

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags_examples"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DAG_ID = "oauthcc_incremental_pull"
LOGICAL_DATE = "2024-03-01T00:00:00+00:00"
CONF = json.dumps({"updated_since": "2024-01-01T00:00:00+00:00"})
RECORDS = 1440  # hourly records from 2024-01-01 up to the end of the data interval
LANDED = Path("items") / "2024-03-01" / "items_20240301T000000.jsonl"
RUN_TIMEOUT = 240.0
DAG_RUN_FINISHED = "DagRun Finished: dag_id=oauthcc_incremental_pull"
EXIT_GRACE = 20.0

SECRET_BASIC = "s3cret-Value-leak-basic-6d1f38"
SECRET_HMAC = "s3cret-Value-leak-hmac-0b7e5a9c2d4f6e8a1b3c5d7e"

DEBUG_LOGGERS = ("urllib3", "requests", "airflow_provider_oauthcc")
# Task processes: a plugin (Airflow 3.1's task logging leaves stdlib loggers at INFO).
DEBUG_PLUGIN = f'''"""Leak scan: urllib3, requests and the provider log at DEBUG in task processes."""

import logging

for name in {DEBUG_LOGGERS!r}:
    logging.getLogger(name).setLevel(logging.DEBUG)
'''
# CLI processes (``connections test`` loads no plugin, and logs only with --verbose): a
# logging config class, as Airflow documents for custom logging.
DEBUG_LOGGING_CONFIG = f'''"""Leak scan: Airflow's logging config with urllib3, requests and the provider at DEBUG."""

from copy import deepcopy

from airflow.config_templates.airflow_local_settings import DEFAULT_LOGGING_CONFIG

LOGGING_CONFIG = deepcopy(DEFAULT_LOGGING_CONFIG)
LOGGING_CONFIG.setdefault("loggers", {{}}).update(
    {{name: {{"level": "DEBUG", "propagate": True}} for name in {DEBUG_LOGGERS!r}}}
)
'''


def airflow_version() -> tuple[int, int]:
    from airflow import __version__

    major, minor = __version__.split(".")[:2]
    return int(major), int(minor)


def airflow_mask_secret_echo(line: str) -> bool:
    """Airflow's in-process supervisor logging a value it was asked to mask (see above)."""
    return "Sending request" in line and "msg=MaskSecret(" in line


@dataclass
class Run:
    """One ``airflow`` CLI process, its own local authorization server, its output files."""

    name: str
    srv: DevServer
    home: Path
    args: list[str]
    env: dict[str, str]
    out: Path
    #: Lines of Airflow's own that are set aside, not scanned.
    ignore_line: Callable[[str], bool] | None = None
    process: subprocess.Popen[bytes] | None = None
    files: list[IO[bytes]] = field(default_factory=list)
    returncode: int | None = None
    stopped_after_run: bool = False

    def start(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        self.files = [(self.out / "stdout").open("wb"), (self.out / "stderr").open("wb")]
        self.process = subprocess.Popen(
            [AIRFLOW, *self.args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self.files[0],
            stderr=self.files[1],
            start_new_session=True,  # its executor's workers are stopped with it
        )

    def wait(self, deadline: float) -> None:
        """Wait for the process until ``deadline``, then kill it (``returncode`` stays None).

        ``airflow dags test --use-executor`` can hang after its DAG run finished, in
        LocalExecutor's shutdown (it joins a worker still reporting the last task): once the
        run's end is in the output, the process gets ``EXIT_GRACE`` seconds, then is stopped
        and ``stopped_after_run`` is set.
        """
        assert self.process is not None
        finished_at: float | None = None
        try:
            while (code := self.process.poll()) is None:
                now = time.monotonic()
                if finished_at is None and DAG_RUN_FINISHED in self._stdout_tail():
                    finished_at = now
                if now > deadline or (finished_at is not None and now > finished_at + EXIT_GRACE):
                    self.stopped_after_run = finished_at is not None
                    self.stop()
                    return
                time.sleep(0.5)
            self.returncode = code
        finally:
            for file in self.files:
                file.close()

    def _stdout_tail(self) -> str:
        with (self.out / "stdout").open("rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - 64_000))
            return ANSI_ESCAPE.sub("", file.read().decode(errors="replace"))

    def stop(self) -> None:
        """Kill the process and whatever it left in its session (executor workers)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    @property
    def log_files(self) -> list[Path]:
        logs = self.home / "logs"
        return [p for p in logs.rglob("*") if p.is_file()] if logs.exists() else []

    def texts(self) -> dict[str, str]:
        """stdout, stderr and every file under AIRFLOW_HOME/logs, colour codes removed."""
        texts = read_texts([self.out / "stdout", self.out / "stderr"], self.out)
        texts.update(read_texts(self.log_files, self.home))
        return {name: ANSI_ESCAPE.sub("", text) for name, text in texts.items()}

    @property
    def output(self) -> str:
        texts = self.texts()
        return texts["stdout"] + texts["stderr"]


def debug_env(base: dict[str, str], home: Path, debug: Path, **extra: str) -> dict[str, str]:
    """``base`` with DEBUG logging everywhere: the level, the plugin, the config class."""
    env = dict(base)
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(debug / "plugins"),
        AIRFLOW__CORE__TEST_CONNECTION="Enabled",
        AIRFLOW__LOGGING__LOGGING_LEVEL="DEBUG",
        AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS="leak_scan_logging.LOGGING_CONFIG",
        PYTHONPATH=os.pathsep.join(
            p for p in (str(debug / "pythonpath"), base.get("PYTHONPATH")) if p
        ),
    )
    env.update(extra)
    return env


def dag_server(
    client_id: str,
    *,
    secret: str | None = None,
    public_jwk: dict[str, Any] | None = None,
    auth_methods: Sequence[str] = ("client_secret_basic",),
) -> DevServer:
    """A server for one DAG run: a 503 from the token endpoint, then a 503 and a 401 from
    the API, so that retries and the refresh after a 401 log too."""
    srv = DevServer(dataset_size=2_000).start()
    srv.add_client(
        client_id, secret=secret, public_jwk=public_jwk, auth_methods=auth_methods, scope="read"
    )
    srv.token_faults.add(status=503, times=1)
    srv.api_faults.add(status=503, every=4, times=1)
    srv.api_faults.add(status=401, every=9, times=1)
    return srv


@dataclass
class Scan:
    runs: dict[str, Run]
    secrets: list[Secret]
    issuers: list[str]


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scan]:
    root = tmp_path_factory.mktemp("leak-scan")
    debug = root / "debug"
    (debug / "plugins").mkdir(parents=True)
    (debug / "plugins" / "leak_scan_debug_logging.py").write_text(DEBUG_PLUGIN)
    (debug / "pythonpath").mkdir()
    (debug / "pythonpath" / "leak_scan_logging.py").write_text(DEBUG_LOGGING_CONFIG)
    pem, jwk = generate_private_key_pem("RS256")
    servers: list[DevServer] = []
    runs: dict[str, Run] = {}
    migrate: subprocess.Popen[bytes] | None = None
    try:
        # -- airflow dags test --use-executor: the deployment's path, task log files ----------
        if airflow_version() >= (3, 2):
            from tests.support.airflow_api_server import shared_api_server

            api = shared_api_server()
            srv = dag_server("leak-key", public_jwk=jwk, auth_methods=["private_key_jwt"])
            servers.append(srv)
            connection = conn_json(
                srv.api_url,
                "leak-key",
                None,
                auth_url=srv.token_url,
                scope="read",
                auth_method="private_key_jwt",
                private_key=pem,
            )
            out = root / "executor"
            runs["dags_test_executor"] = Run(
                "dags_test_executor",
                srv,
                api.home,
                [
                    "dags",
                    "test",
                    "--verbose",
                    "--use-executor",
                    DAG_ID,
                    LOGICAL_DATE,
                    "--conf",
                    CONF,
                ],
                debug_env(
                    api.env,
                    api.home,
                    debug,
                    AIRFLOW__CORE__EXECUTOR="LocalExecutor",
                    AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{api.url}/execution/",
                    AIRFLOW_CONN_EXAMPLE_API=connection,
                    OAUTHCC_EXAMPLE_OUTPUT=(out / "landing").as_uri(),
                ),
                out,
            )
            runs["dags_test_executor"].start()

        # -- airflow connections test: private_key_jwt and client_secret_jwt ------------------
        srv = DevServer().start()
        servers.append(srv)
        srv.add_client("leak-key", public_jwk=jwk, auth_methods=["private_key_jwt"], scope="read")
        srv.add_client(
            "leak-hmac", secret=SECRET_HMAC, auth_methods=["client_secret_jwt"], scope="read"
        )
        # DPoP-bound, with a nonce demanded: the proofs are scanned for as well.
        srv.require_dpop("leak-key")
        srv.demand_dpop_nonces(api=False)
        platform = PlatformIssuer()
        srv.clients.add(
            build_federated_client("leak-wl", federation=platform.federation("sa"), scope="read")
        )
        srv.clients.add(build_jwt_bearer_client("leak-jb", public_jwk=jwk, scope="read"))
        assertion_file = root / "federated-token"
        platform.write(assertion_file, "sa")
        for method, client_id, secret, extra in [
            ("private_key_jwt", "leak-key", None, {"private_key": pem, "dpop": True}),
            ("client_secret_jwt", "leak-hmac", SECRET_HMAC, {}),
            (
                "federated_assertion",
                "leak-wl",
                None,
                {"client_assertion_file": str(assertion_file)},
            ),
            (
                "jwt_bearer",
                "leak-jb",
                None,
                {"grant_type": "jwt_bearer", "private_key": pem, "auth_method": "private_key_jwt"},
            ),
        ]:
            name = f"connections_test_{method}"
            extra = {"auth_method": method, **extra}
            home = root / name
            home.mkdir()
            connection = conn_json(
                srv.api_url,
                client_id,
                secret,
                auth_url=srv.token_url,
                scope="read",
                **extra,
            )
            runs[name] = Run(
                name,
                srv,
                home,
                ["connections", "test", "leak_scan", "--verbose"],
                debug_env(dict(os.environ), home, debug, AIRFLOW_CONN_LEAK_SCAN=connection),
                root / f"{name}-output",
            )

        # -- airflow dags test, tasks in the CLI process (meanwhile: migrate, connections) ----
        home = root / "dags_test"
        home.mkdir()
        migrate = subprocess.Popen(
            [AIRFLOW, "db", "migrate"],
            env=dict(os.environ, AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for name in RUNS:
            if name.startswith("connections_test"):
                runs[name].start()
        _, migrate_errors = migrate.communicate(timeout=RUN_TIMEOUT)
        assert migrate.returncode == 0, migrate_errors[-2000:]
        srv = dag_server("leak-basic", secret=SECRET_BASIC)
        servers.append(srv)
        out = root / "dags_test-output"
        runs["dags_test"] = Run(
            "dags_test",
            srv,
            home,
            ["dags", "test", "--verbose", DAG_ID, LOGICAL_DATE, "--conf", CONF],
            debug_env(
                dict(os.environ),
                home,
                debug,
                AIRFLOW_CONN_EXAMPLE_API=conn_json(
                    srv.api_url, "leak-basic", SECRET_BASIC, auth_url=srv.token_url, scope="read"
                ),
                OAUTHCC_EXAMPLE_OUTPUT=(out / "landing").as_uri(),
            ),
            out,
            ignore_line=airflow_mask_secret_echo,
        )
        runs["dags_test"].start()

        deadline = time.monotonic() + RUN_TIMEOUT
        for run in runs.values():
            run.wait(deadline)
            for log in run.log_files:  # kept for a look after the run (the homes are removed)
                copy = run.out / "logs" / log.relative_to(run.home / "logs")
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(log, copy)
        secrets = [
            Secret("client secret", SECRET_BASIC),
            Secret("client secret", SECRET_HMAC),
            *pem_material(pem),
            *jwt_parts("federated assertion", assertion_file.read_text()),
        ]
        issuers = ["leak-key", "leak-hmac", "leak-basic", "leak-jb", platform.issuer]
        for server in servers:
            secrets += secrets_seen_by(server)
            issuers.append(server.issuer)
        yield Scan(runs, secrets, issuers)
    finally:
        if migrate is not None and migrate.poll() is None:
            migrate.kill()
            migrate.wait()
        for run in runs.values():
            run.stop()
        for server in servers:
            server.stop()


RUNS = [
    "dags_test",
    "dags_test_executor",
    "connections_test_private_key_jwt",
    "connections_test_client_secret_jwt",
    "connections_test_federated_assertion",
    "connections_test_jwt_bearer",
]


def the_run(scan: Scan, name: str) -> Run:
    if name not in scan.runs:
        pytest.skip(
            "the executor run is on Airflow 3.2+ only (it needs the 3.x API server, which 2.x "
            "lacks; not yet tried on 3.0); Airflow 3.1's `dags test --use-executor` marks "
            "tasks that succeeded up for retry (the executor's success event meets a task state "
            "still 'running' or 'queued'), which adds minutes of retry delays; the in-process "
            "run and `connections test` cover the older versions"
        )
    return scan.runs[name]


@pytest.mark.parametrize("name", RUNS)
def test_the_run_did_its_work_and_logged_at_debug(scan: Scan, name: str) -> None:
    """The scan means something only if the run worked and its output holds DEBUG lines."""
    run = the_run(scan, name)
    output = run.output
    assert run.returncode == 0 or run.stopped_after_run, output[-4000:]
    if name.startswith("connections_test"):
        assert "Connection success!" in output, output[-4000:]
        assert run.srv.stats.token_requests_ok >= 1
        assert "Starting new HTTP connection" in output and "/oauth/token HTTP/1.1" in output
        return
    assert re.search(rf"{DAG_RUN_FINISHED}, .*state=success", output), output[-4000:]
    landed = run.out / "landing" / LANDED
    assert len(landed.read_text().splitlines()) == RECORDS
    # The faults were met: a retried token request, a retried page, a refresh after a 401.
    assert run.srv.stats.token_requests_failed == 1 and run.srv.stats.token_requests_ok == 2
    assert run.srv.stats.api_requests_by_status[503] == 1
    assert run.srv.stats.api_requests_by_status[401] == 1
    if name == "dags_test_executor":
        task_logs = {p.parent.name for p in run.log_files if p.name.startswith("attempt=")}
        assert task_logs == {"task_id=pull_items", "task_id=check_pull"}
        # The real supervisor does not echo masked values (the in-process one does).
        echoes = [
            line
            for text in run.texts().values()
            for line in text.splitlines()
            if airflow_mask_secret_echo(line)
        ]
        assert echoes == []
        [pull_log] = [
            text for source, text in run.texts().items() if "task_id=pull_items" in source
        ]
        scanned = pull_log
    else:
        scanned = output
    # DEBUG from urllib3, from the operator, and the provider's own loggers were all on.
    assert "Starting new HTTP connection" in scanned and "/oauth/token HTTP/1.1" in scanned
    assert "Sending GET to" in scanned
    assert "Fetched an OAuth token" in scanned and "API answered 401" in scanned


@pytest.mark.parametrize("name", RUNS)
def test_no_credential_in_any_output(scan: Scan, name: str) -> None:
    run = the_run(scan, name)
    kinds = {secret.kind for secret in scan.secrets}
    assert {"client secret (Basic credentials)", "access token", "client assertion"} <= kinds
    assert "DPoP proof" in kinds
    texts = run.texts()
    assert texts, "nothing to scan"
    leaks: list[Leak] = find_leaks(
        texts, scan.secrets, issuers=scan.issuers, ignore_line=run.ignore_line
    )
    assert not leaks, "\n".join(map(str, leaks))


def test_the_scan_finds_the_runs_tokens_by_shape_alone(scan: Scan) -> None:
    """Each access token the local servers issued is caught by the shape rules alone (no
    value list, no issuer list), so a token from any other issuer would be caught too."""
    tokens = {secret.value for secret in scan.secrets if secret.kind == "access token"}
    assert len(tokens) >= 4  # a DAG run refreshes after its 401; each connections test: one
    for token in tokens:
        line = f"DEBUG header Authorization: Bearer {token}"
        assert [leak.kind for leak in find_leaks({"probe": line}, [])] == ["a JWT (by shape)"]
