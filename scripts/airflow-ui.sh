#!/usr/bin/env bash
# `make airflow`: Airflow (standalone) on http://127.0.0.1:8080 with the example DAGs and the
# connection `example_api` pointing at the local authorization server and API, for a look at
# the UI: the connection form and its Test button, the DAGs, their task logs and outputs.
# State lives in .airflow/ (git-ignored). Ctrl-C stops Airflow and the local servers.
# AIRFLOW_UI_PORT changes the port.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-env.sh

PY=.venv/bin/python
ROOT=$PWD/.airflow
STATE=$ROOT/devserver.json
PORT=${AIRFLOW_UI_PORT:-8080}

if ! "$PY" -c "import socket, sys; socket.create_server(('127.0.0.1', int(sys.argv[1]))).close()" "$PORT" 2>/dev/null; then
  echo "port $PORT on 127.0.0.1 is in use; choose another with AIRFLOW_UI_PORT=NNNN make airflow" >&2
  exit 1
fi
mkdir -p "$ROOT"
rm -f "$STATE"
export PATH=$PWD/.venv/bin:$PATH  # standalone starts its components as `airflow ...`
export AIRFLOW_HOME=$ROOT/home
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER=$PWD/dags_examples
export AIRFLOW__CORE__TEST_CONNECTION=Enabled
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT=$PORT
export AIRFLOW__API__BASE_URL=http://127.0.0.1:$PORT
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$PORT/execution/
export OAUTHCC_EXAMPLE_OUTPUT=file://$ROOT/output
DEVSERVER_DEMO_SECRET=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(24))')
export DEVSERVER_DEMO_SECRET

server_pid=
stop_servers() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    echo "== local authorization server and API stopped"
  fi
}
trap stop_servers EXIT
trap 'exit 130' INT TERM

echo "== starting the local authorization server and API"
"$PY" -m devserver --state-file "$STATE" --dataset-size 5000 >"$ROOT/devserver.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 150); do
  [[ -s $STATE ]] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$ROOT/devserver.log" >&2; exit 1; }
  sleep 0.2
done
[[ -s $STATE ]] || { echo "devserver did not start within 30 s" >&2; exit 1; }

echo "== migrating the Airflow database (.airflow/home)"
.venv/bin/airflow db migrate >"$ROOT/db-migrate.log" 2>&1 || { tail -n 40 "$ROOT/db-migrate.log" >&2; exit 1; }

# A stored connection (not an environment variable) so that it shows in the UI, with this
# run's server address and secret.
CONN_JSON=$("$PY" - "$STATE" <<'EOF'
import json, os, sys
state = json.load(open(sys.argv[1]))
print(json.dumps({
    "conn_type": "oauth2_client_credentials",
    "description": "Local authorization server and API started by make airflow",
    "host": state["api_url"],
    "login": "demo-client",
    "password": os.environ["DEVSERVER_DEMO_SECRET"],
    "extra": {"auth_url": state["token_url"], "scope": "read"},
}))
EOF
)
.venv/bin/airflow connections delete example_api >/dev/null 2>&1 || true
.venv/bin/airflow connections add example_api --conn-json "$CONN_JSON" >/dev/null

cat <<EOF
== starting Airflow on http://127.0.0.1:$PORT (Ctrl-C to stop)
   It prints the admin password once ready (also in $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated).
   Admin > Connections > example_api: the OAuth form; press Test for a token.
   DAG oauthcc_incremental_pull: trigger it (keep the logical date the form fills in; a run
   without one has no data interval) with updated_since = 2024-01-01T00:00:00Z to pull the
   local API's 5,000 records into $ROOT/output/; oauthcc_items_landed then runs on the Asset.
EOF
.venv/bin/airflow standalone
