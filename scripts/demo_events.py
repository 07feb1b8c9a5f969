"""`make demo-events`: the event-driven example (dags_examples/example_event_driven_pull.py) in a
small real Airflow deployment (api-server, scheduler, dag-processor, triggerer; SQLite) against
the local authorization server and API. Records are appended to the API's change feed; the
watcher in the triggerer sees them and each batch starts one DAG run that pulls exactly those
records. Prints what happened and stops everything."""

from __future__ import annotations

import json
import secrets
import shutil
import sys
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from devserver import DevServer  # noqa: E402
from tests.support.airflow_deployment import AirflowDeployment  # noqa: E402
from tests.support.connections import conn_json  # noqa: E402

DAG_ID = "oauthcc_event_driven_pull"
DEMO = REPO / ".demo" / "events"


def main() -> int:
    shutil.rmtree(DEMO, ignore_errors=True)
    (DEMO / "dags").mkdir(parents=True)
    shutil.copy(REPO / "dags_examples" / "example_event_driven_pull.py", DEMO / "dags")
    secret = secrets.token_urlsafe(24)
    with DevServer() as api:
        api.add_client("demo-client", secret=secret, scope="read")
        print(f"== local authorization server {api.token_url}\n   API {api.api_url}")
        env = {
            "AIRFLOW_CONN_EXAMPLE_API": conn_json(
                api.api_url, "demo-client", secret, auth_url=api.token_url, scope="read"
            ),
            "OAUTHCC_EXAMPLE_OUTPUT": f"file://{DEMO / 'output'}",
            "OAUTHCC_EXAMPLE_POLL_INTERVAL": "2",
        }
        print("== starting Airflow: api-server, scheduler, dag-processor, triggerer")
        airflow = AirflowDeployment(DEMO / "dags", env).start()
        try:
            return run(api, airflow)
        finally:
            airflow.stop()
            print("== Airflow and the servers stopped")


def run(api: DevServer, airflow: AirflowDeployment) -> int:
    wait(
        airflow,
        "the DAG parsed",
        lambda: airflow.query("select 1 from dag where dag_id = ?", DAG_ID),
    )
    airflow.cli("dags", "unpause", DAG_ID)
    wait(airflow, "the watcher running", lambda: airflow.query("select 1 from trigger"))
    print("== the watcher polls /v1/changes every 2 s from the triggerer")
    for batch, count in enumerate((3, 2), start=1):
        requests.post(f"{api.api_url}/_control/feed", json={"count": count}, timeout=5)
        print(f"== appended {count} records to the change feed")
        found = wait(airflow, f"DAG run {batch}", lambda n=batch: finished_runs(airflow, n))
        run_id, state = found[-1]
        print(f"   DAG run {run_id}: {state}")
        if state != "success":
            print(f"demo failed: see the logs in {airflow.home / 'logs'}", file=sys.stderr)
            return 1
    files = sorted((DEMO / "output" / "changes").glob("*.jsonl"))
    for path in files:
        ids = [json.loads(line)["id"] for line in path.read_text().splitlines()]
        print(f"   {path.name}: {', '.join(ids)}")
    print(f"== {len(files)} runs, one per batch; token requests: {api.stats.token_requests}")
    return 0


def finished_runs(airflow: AirflowDeployment, count: int) -> list[tuple[object, ...]] | None:
    rows = airflow.query("select run_id, state from dag_run where dag_id = ? order by id", DAG_ID)
    done = [r for r in rows if r[1] in ("success", "failed")]
    return done if len(done) >= count else None


def wait(airflow: AirflowDeployment, what: str, check, within: float = 240.0):  # type: ignore[no-untyped-def]
    try:
        return airflow.wait_for(what, check, within)
    except AssertionError:
        raise SystemExit(f"demo failed: {what} not within {within:.0f} s") from None


if __name__ == "__main__":
    sys.exit(main())
