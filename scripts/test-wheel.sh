#!/usr/bin/env bash
# The built artifact as a user gets it: `uv build` makes the sdist and the wheel; the wheel (not
# an editable install) goes into a clean virtualenv under /tmp with the locked newest versions
# as constraints; then, from outside the repository:
#   - the distributions' contents and metadata (scripts/check_dist.py, twine check),
#   - `airflow providers list`, `providers hooks`, `providers triggers` show the provider,
#   - the example DAG oauthcc_incremental_pull runs with `airflow dags test` against the
#     local authorization server and API (started from the repository's .venv; the DAG and the
#     provider run in the clean virtualenv),
#   - the README's quick start, as written (scripts/check_quickstart.py),
#   - the hook and operator integration tests (tests/integration/test_hook.py, test_operator.py)
#     pass in that virtualenv against the local servers.
# Usage: scripts/test-wheel.sh [--keep] [--airflow latest|3.1|3.0|2.11] [--unpinned]
#   --keep     leaves the work folder for a look
#   --airflow  which locked Airflow the clean virtualenv gets (default latest): the versions of
#              the uv group airflow-latest, airflow-3-1, airflow-3-0 or airflow-floor (2.11)
#   --unpinned installs as many users do instead: `pip install WHEEL apache-airflow~=X.Y.0`
#              (the newest release of that line), no constraints at all (the resolver picks
#              the newest of everything the wheel and that Airflow allow), and checks only that
#              a pull's output file is written or, where the resolved libraries cannot work
#              together (Airflow 2.11 / 3.0 with universal-pathlib 0.3), that the provider
#              names the fix
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
KEEP=
AIRFLOW_LINE=latest
UNPINNED=
while [[ $# -gt 0 ]]; do
  case $1 in
    --keep) KEEP=--keep; shift ;;
    --airflow) AIRFLOW_LINE=${2:?--airflow needs a version}; shift 2 ;;
    --unpinned) UNPINNED=1; shift ;;
    *) echo "usage: $0 [--keep] [--airflow latest|3.1|3.0|2.11] [--unpinned]" >&2; exit 2 ;;
  esac
done
case $AIRFLOW_LINE in
  latest) GROUP=airflow-latest ;;
  3.1) GROUP=airflow-3-1 ;;
  3.0) GROUP=airflow-3-0 ;;
  2.11) GROUP=airflow-floor ;;
  *) echo "unknown --airflow $AIRFLOW_LINE (latest, 3.1, 3.0 or 2.11)" >&2; exit 2 ;;
esac
scripts/ensure-env.sh
if command -v uv >/dev/null 2>&1; then UV=(uv); else UV=(python3 -m uv); fi

WORK=$(mktemp -d /tmp/oauthcc-wheel.XXXXXX)
VENV=$WORK/venv
STATE=$WORK/devserver.json
server_pid=
finish() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ "${1:-}" != "--keep" ]]; then rm -rf "$WORK"; else echo "   kept $WORK"; fi
}
trap 'finish "$KEEP"' EXIT
fail() { echo "wheel test failed: $*" >&2; exit 1; }

echo "== uv build (sdist + wheel)"
"${UV[@]}" build --quiet --out-dir "$WORK/dist" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; exit 1; }
.venv/bin/python scripts/check_dist.py "$WORK/dist"
.venv/bin/twine check --strict "$WORK"/dist/* >"$WORK/twine.log" 2>&1 || { cat "$WORK/twine.log" >&2; exit 1; }
echo "   twine check --strict: PASSED (long description renders)"

echo "== a clean virtualenv with the wheel and $([[ -n $UNPINNED ]] && echo "the Airflow" || echo "the locked versions") of group $GROUP"
"${UV[@]}" export --frozen --quiet --format requirements-txt --no-hashes --no-emit-project \
  --no-default-groups --group "$GROUP" --all-extras -o "$WORK/constraints.txt"
"${UV[@]}" venv --quiet --python "$(.venv/bin/python -c 'import sys; print(sys.executable)')" "$VENV"
WHEEL=$(ls "$WORK"/dist/*.whl)
AIRFLOW_PIN=$(grep -E '^apache-airflow==' "$WORK/constraints.txt" | cut -d' ' -f1)
if [[ -n $UNPINNED ]]; then
  # The newest release of the locked Airflow's line (apache-airflow~=3.0.0), as a user who
  # upgrades gets it; uv's cache makes this a few seconds once it is downloaded.
  AIRFLOW_PIN="apache-airflow~=$(echo "${AIRFLOW_PIN#apache-airflow==}" | cut -d. -f1,2).0"
  echo "   as users install it: the wheel and $AIRFLOW_PIN, no constraints"
  "${UV[@]}" pip install --quiet --python "$VENV/bin/python" "$WHEEL" "$AIRFLOW_PIN"
else
  "${UV[@]}" pip install --quiet --python "$VENV/bin/python" -c "$WORK/constraints.txt" \
    "$WHEEL[redis]" "$AIRFLOW_PIN"
fi
echo "   $("$VENV/bin/python" -c 'from importlib.metadata import version as v; print("apache-airflow", v("apache-airflow"), "/ universal-pathlib", v("universal-pathlib"))')"

cd "$WORK"  # nothing from the repository is importable from here
export AIRFLOW_HOME=$WORK/airflow-home
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER=$WORK/dags
export OAUTHCC_EXAMPLE_OUTPUT=file://$WORK/output
mkdir -p "$WORK/dags"
cp "$REPO/dags_examples/example_incremental_pull.py" "$WORK/dags/"
AIRFLOW=$VENV/bin/airflow

"$VENV/bin/python" - "$VENV" <<'EOF'
import sys
from pathlib import Path

import airflow_provider_oauthcc as package

where = Path(package.__file__).resolve()
if not where.is_relative_to(Path(sys.argv[1]).resolve()):
    sys.exit(f"airflow_provider_oauthcc imported from {where}, not from the wheel")
print(f"   airflow_provider_oauthcc {package.__version__} from {where.parent}")
EOF

if [[ -n $UNPINNED ]]; then
  echo "== a pull's output to file:// (the provider's writer, from the wheel)"
  "$VENV/bin/python" "$REPO/scripts/check_unpinned_output.py" "$WORK/output" \
    || fail "the unpinned install cannot write its output"
  echo "== the wheel, installed unpinned, writes its output (or names the fix)"
  exit 0
fi

echo "== airflow providers list / hooks / triggers"
"$AIRFLOW" providers list -o plain >"$WORK/providers.txt" 2>"$WORK/providers.err" || { cat "$WORK/providers.err" >&2; exit 1; }
VERSION=$("$VENV/bin/python" -c 'import airflow_provider_oauthcc as p; print(p.__version__)')
grep -E "^airflow-provider-oauthcc\s+.*\s$VERSION\s*$" "$WORK/providers.txt" | sed 's/  */ /g; s/^/   /' \
  || fail "airflow providers list does not show airflow-provider-oauthcc $VERSION"
"$AIRFLOW" providers hooks -o plain >"$WORK/hooks.txt" 2>/dev/null
grep -E "^oauth2_client_credentials\s+airflow_provider_oauthcc\.hooks\.oauth_cc\.OAuthCCHook\s.*airflow-provider-oauthcc" "$WORK/hooks.txt" | sed 's/  */ /g; s/^/   /' \
  || fail "airflow providers hooks does not show oauth2_client_credentials"
"$AIRFLOW" providers triggers -o plain >"$WORK/triggers.txt" 2>/dev/null
grep -E "^airflow-provider-oauthcc\s+airflow_provider_oauthcc\.triggers\.oauth_http\s" "$WORK/triggers.txt" | sed 's/  */ /g; s/^/   /' \
  || fail "airflow providers triggers does not show the OAuthHttpTrigger module"

echo "== airflow dags test oauthcc_incremental_pull against the local servers"
DEVSERVER_DEMO_SECRET=$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(24))')
export DEVSERVER_DEMO_SECRET
(cd "$REPO" && exec .venv/bin/python -m devserver --state-file "$STATE" --dataset-size 500) \
  >"$WORK/devserver.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 150); do
  [[ -s $STATE ]] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$WORK/devserver.log" >&2; exit 1; }
  sleep 0.2
done
[[ -s $STATE ]] || fail "the devserver did not start within 30 s"
AIRFLOW_CONN_EXAMPLE_API=$("$VENV/bin/python" - "$STATE" <<'EOF'
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
"$AIRFLOW" db migrate >"$WORK/db-migrate.log" 2>&1 || { tail -n 40 "$WORK/db-migrate.log" >&2; exit 1; }
if [[ $AIRFLOW_LINE == 3.0 ]]; then
  # Airflow 3.0's `dags test` fails a task whose outlet asset no DAG parse has activated yet
  # (AirflowInactiveAssetInInletOrOutletException, apache/airflow#51644); a deployment's DAG
  # processor parses the file first, as `dags reserialize` does here.
  "$AIRFLOW" dags reserialize >"$WORK/reserialize.log" 2>&1 || { tail -n 40 "$WORK/reserialize.log" >&2; exit 1; }
fi
"$AIRFLOW" dags test oauthcc_incremental_pull 2024-03-01T00:00:00+00:00 \
  --conf '{"updated_since": "2024-01-01T00:00:00+00:00"}' >"$WORK/dags-test.log" 2>&1 \
  || { tail -n 60 "$WORK/dags-test.log" >&2; fail "airflow dags test exited non-zero"; }
"$VENV/bin/python" - "$WORK/dags-test.log" "$WORK/output" <<'EOF'
import re, sys
from pathlib import Path

log = re.sub(r"\x1b\[[0-9;]*m", "", Path(sys.argv[1]).read_text())
finished = re.search(r"DagRun Finished: dag_id=(\S+), .*?state=(\w+)", log)
if not finished or finished.group(2) != "success":
    sys.exit(f"the DAG run did not succeed (log: {sys.argv[1]})")
files = sorted(Path(sys.argv[2]).rglob("*.jsonl"))
lines = sum(1 for f in files for _ in f.open("rb"))
if len(files) != 1 or lines != 500:
    sys.exit(f"expected one output file of 500 records, found {len(files)} files, {lines} lines")
print(f"   {finished.group(1)}: {finished.group(2)}, {lines} records in {files[0].name}")
EOF
echo "== the README's quick start as written (connection, test commands, DAG under dags test)"
"$VENV/bin/python" "$REPO/scripts/check_quickstart.py" "$REPO/README.md" "$STATE" \
  "$DEVSERVER_DEMO_SECRET" "$WORK" || fail "the README quick start failed"
echo "== the hook and operator tests against the local servers, the provider from the wheel"
# A copy of those tests, their fixtures and the devserver, outside the repository; pytest and
# the devserver's web stack at the dev group's locked versions for this Airflow.
SUITE=$WORK/suite
mkdir -p "$SUITE/tests/integration"
cp -r "$REPO/devserver" "$REPO/pyproject.toml" "$SUITE/"
cp -r "$REPO/tests/conftest.py" "$REPO/tests/support" "$SUITE/tests/"
cp "$REPO"/tests/integration/{conftest.py,test_hook.py,test_operator.py} "$SUITE/tests/integration/"
"${UV[@]}" export --frozen --quiet --format requirements-txt --no-hashes --no-emit-project \
  --project "$REPO" --no-default-groups --group dev --group "$GROUP" -o "$WORK/test-constraints.txt"
"${UV[@]}" pip install --quiet --python "$VENV/bin/python" -c "$WORK/test-constraints.txt" \
  pytest pytest-timeout flask a2wsgi uvicorn
(
  cd "$SUITE"
  "$VENV/bin/python" -c '
import sys
from pathlib import Path
import airflow_provider_oauthcc as package
if not Path(package.__file__).resolve().is_relative_to(Path(sys.argv[1]).resolve()):
    sys.exit(f"the tests would import airflow_provider_oauthcc from {package.__file__}")
' "$VENV"
  "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/integration/test_hook.py \
    tests/integration/test_operator.py >"$WORK/pytest.log" 2>&1 \
    || { tail -n 80 "$WORK/pytest.log" >&2; fail "the hook and operator tests failed"; }
  echo "   $(tail -n 1 "$WORK/pytest.log")"
)
echo "== the wheel works"
