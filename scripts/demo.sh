#!/usr/bin/env bash
# `make demo`: the main job end to end on this machine.
#   1. installs what is missing (uv, the locked environment),
#   2. starts the local authorization server and protected API (devserver) with a fresh secret,
#   3. migrates an SQLite AIRFLOW_HOME under .demo/ (git-ignored),
#   4. tests the connection the way the UI's Test button does,
#   5. runs `airflow dags test` on the hourly incremental-pull example DAG, with the API
#      answering 429 once and 503 twice along the way,
#   6. prints a summary (records, pages, retries, token requests, output path) and stops the
#      servers. Exits non-zero if anything failed; the servers are stopped either way.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-env.sh

PY=.venv/bin/python
DEMO=$PWD/.demo
STATE=$DEMO/devserver.json
LOG=$DEMO/dags-test.log
DAG_ID=oauthcc_incremental_pull
LOGICAL_DATE=2024-03-01T00:00:00+00:00
CONF='{"updated_since": "2024-01-01T00:00:00+00:00"}'

mkdir -p "$DEMO"
rm -rf "$DEMO/airflow-home" "$DEMO/output" "$STATE" "$LOG"

export AIRFLOW_HOME=$DEMO/airflow-home
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER=$PWD/dags_examples
export AIRFLOW__CORE__TEST_CONNECTION=Enabled
export OAUTHCC_EXAMPLE_OUTPUT=file://$DEMO/output
DEVSERVER_DEMO_SECRET=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(24))')
export DEVSERVER_DEMO_SECRET

server_pid=
stop_servers() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    echo "== servers stopped"
  fi
}
trap stop_servers EXIT
trap 'exit 130' INT TERM

echo "== starting the local authorization server and API"
"$PY" -m devserver --state-file "$STATE" --dataset-size 5000 >"$DEMO/devserver.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 150); do
  [[ -s $STATE ]] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "devserver exited before listening:" >&2
    cat "$DEMO/devserver.log" >&2
    exit 1
  fi
  sleep 0.2
done
[[ -s $STATE ]] || { echo "devserver did not start within 30 s" >&2; exit 1; }

# The connection as Airflow reads it from the environment: no secret in any file or DAG.
AIRFLOW_CONN_EXAMPLE_API=$("$PY" - "$STATE" <<'EOF'
import json, os, sys
state = json.load(open(sys.argv[1]))
print(json.dumps({
    "conn_type": "oauth2_client_credentials",
    "host": state["api_url"],
    "login": "demo-client",
    "password": os.environ["DEVSERVER_DEMO_SECRET"],
    "extra": {"auth_url": state["token_url"], "scope": "read"},
}))
EOF
)
export AIRFLOW_CONN_EXAMPLE_API
"$PY" - "$STATE" <<'EOF'
import json, sys
state = json.load(open(sys.argv[1]))
print(f"   token endpoint {state['token_url']}\n   API            {state['api_url']}")
EOF

echo "== migrating the Airflow database (SQLite in .demo/airflow-home)"
if ! .venv/bin/airflow db migrate >"$DEMO/db-migrate.log" 2>&1; then
  tail -n 40 "$DEMO/db-migrate.log" >&2
  exit 1
fi

echo "== testing connection example_api (what the UI's Test button runs)"
if ! .venv/bin/airflow connections test example_api >"$DEMO/connection-test.log" 2>&1; then
  tail -n 40 "$DEMO/connection-test.log" >&2
  exit 1
fi
grep -E "Connection success|Token obtained" "$DEMO/connection-test.log" | sed 's/^/   /' | head -n 3

echo "== making the API misbehave: a 429 (Retry-After: 1) on the first page, two 503s later"
"$PY" - "$STATE" <<'EOF'
import json, sys, urllib.request
control = json.load(open(sys.argv[1]))["control_url"]
# Zero the counters (the connection test fetched a token), then arm the faults.
urllib.request.urlopen(urllib.request.Request(f"{control}/reset", method="POST"), timeout=10).close()
for fault in ({"status": 429, "retry_after": 1, "times": 1}, {"status": 503, "every": 5, "times": 2}):
    request = urllib.request.Request(
        f"{control}/faults",
        data=json.dumps({"target": "api", **fault}).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()
EOF

echo "== airflow dags test $DAG_ID $LOGICAL_DATE --conf '$CONF'"
set +e
.venv/bin/airflow dags test "$DAG_ID" "$LOGICAL_DATE" --conf "$CONF" 2>&1 | tee "$LOG" | "$PY" -u -c '
import re, sys
ansi = re.compile(r"\x1b\[[0-9;]*m")
wanted = re.compile(r"Pulling |Page \d+:|Pulled |Checked |Fetched an OAuth token|DagRun Finished|Task failed|Error")
for line in sys.stdin:
    line = ansi.sub("", line).rstrip()
    if not wanted.search(line):
        continue
    text = re.sub(r"^\S+Z \[\w+ *\] ", "", line)
    text = re.sub(r" +\[[\w.]+\]( loc=\S+)?.*$", "", text)
    text = re.sub(r"(DagRun Finished: dag_id=[^,]+).*(state=\w+).*", r"\1, \2", text)
    print("   " + text[:200])
'
status=${PIPESTATUS[0]}
set -e
if ((status != 0)); then
  echo "airflow dags test failed (exit $status); full log: $LOG" >&2
  exit "$status"
fi

echo "== summary"
"$PY" - "$STATE" "$LOG" "$DEMO/output" "$LOGICAL_DATE" <<'EOF'
import json, re, sys, urllib.request
from pathlib import Path

state_file, log_file, output_dir, logical_date = sys.argv[1:]
log = re.sub(r"\x1b\[[0-9;]*m", "", Path(log_file).read_text())
stats = json.load(urllib.request.urlopen(json.load(open(state_file))["control_url"] + "/stats"))
finished = re.search(r"DagRun Finished: dag_id=(\S+), .*?state=(\w+)", log)
pulled = re.search(r"Pulled ([\d,]+) records in (\d+) pages \(([^)]+)\) to (\S+) in ([\d.]+) s", log)
problems = []
if not finished or finished.group(2) != "success":
    problems.append("the DAG run did not succeed")
if not pulled:
    problems.append("the pull did not report its summary")
files = sorted(Path(output_dir).rglob("*.jsonl"))
if len(files) != 1:
    problems.append(f"expected one output file, found {len(files)}")
if problems:
    sys.exit("demo failed: " + "; ".join(problems) + f" (log: {log_file})")
records, pages, size, path, seconds = pulled.groups()
lines = sum(1 for _ in files[0].open("rb"))
if lines != int(records.replace(",", "")):
    sys.exit(f"demo failed: {files[0]} has {lines} lines, the pull reported {records} records")
by_status = ", ".join(f"{n} x {s}" for s, n in sorted(stats["api_requests_by_status"].items()))
retries = len(re.findall(r"retrying in", log))
rows = [
    ("DAG run", f"{finished.group(1)} at {logical_date}: {finished.group(2)}"),
    ("records", f"{records} (the file has {lines:,} lines, {size})"),
    ("pages", pages),
    ("retried requests", f"{retries} (the API answered {by_status})"),
    ("token requests", f"{stats['token_requests']} for the whole DAG run"),
    ("pull time", f"{seconds} s"),
    ("output", path),
]
for name, value in rows:
    print(f"   {name:<17} {value}")
EOF
