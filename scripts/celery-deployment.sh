#!/usr/bin/env bash
# A CeleryExecutor deployment on this machine, without containers:
#   PostgreSQL (metadata database and Celery result backend; a private cluster under DIR/pg),
#   Redis as the Celery broker, a second Redis for the shared token cache,
#   airflow api-server, scheduler, dag-processor, triggerer,
#   and two Celery workers ("worker-a", "worker-b") with their own hostname, AIRFLOW_HOME
#   (so their own task logs and `file` token cache) and log-server port: two "machines".
#
# Usage:
#   celery-deployment.sh up                 `make airflow-celery`: starts the local authorization
#                                           server and API, the deployment under .airflow/celery/
#                                           and the example DAGs; Ctrl-C stops everything.
#   celery-deployment.sh start DIR          starts everything under DIR (a new or empty folder) with
#                                           the caller's AIRFLOW__*/AIRFLOW_CONN_*/OAUTHCC_* settings;
#                                           returns once the API answers and both workers are up;
#                                           DIR/state.json lists ports, URLs and process ids.
#   celery-deployment.sh stop DIR           stops every process and the Postgres cluster.
#   celery-deployment.sh stop-one DIR NAME  stops one component (SIGTERM; KILL=1 for SIGKILL)
#   celery-deployment.sh start-one DIR NAME starts it again with the same settings.
# Components: postgres redis-broker redis-cache api-server scheduler dag-processor triggerer
#             worker-a worker-b.
# Every component gets the Airflow connection `token_cache_redis` (the token-cache Redis) for the
# connections' `cache_redis_conn_id`.
# Settings: CELERY_WORKER_CONCURRENCY (default 4), AIRFLOW_CELERY_PORT (API port for `up`, 8080),
# REDIS_CACHE_PORT (default: a free port).
# Postgres refuses to run as root: as root the cluster runs as the `postgres` user.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${OAUTHCC_VENV:-$ROOT/.venv}
PY=$VENV/bin/python
AIRFLOW=$VENV/bin/airflow
START_TIMEOUT=${CELERY_START_TIMEOUT:-300}
WORKERS=(worker-a worker-b)

die() { echo "celery-deployment: $*" >&2; exit 1; }

# On exit: a deployment that did not finish starting is stopped; `up` stops everything.
CLEANUP_DIR= SERVER_PID=
on_exit() {
  local status=$?
  trap - EXIT
  if [[ -n $CLEANUP_DIR ]]; then
    ((status == 0)) || echo "celery-deployment: stopping what started" >&2
    cmd_stop "$CLEANUP_DIR" || true
  fi
  if [[ -n $SERVER_PID ]] && kill -TERM "$SERVER_PID" 2>/dev/null; then
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

check_python_dependencies() {
  [[ -x $PY ]] || die "no environment at $VENV (run scripts/ensure-env.sh)"
  if ! "$PY" -c 'import airflow.providers.celery, celery, psycopg2, asyncpg' 2>/dev/null; then
    die "the Celery deployment needs apache-airflow-providers-celery, psycopg2 and asyncpg in $VENV.
  Install them with:  uv sync --group celery
  (or, without touching the lock: uv pip install --python $PY apache-airflow-providers-celery psycopg2-binary asyncpg)"
  fi
}

pg_bin() {
  local dir
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v initdb)")"
    return
  fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [[ -x $dir/initdb && -x $dir/pg_ctl ]] && { echo "$dir"; return; }
  done
}

ensure_postgres() {
  if [[ -z $(pg_bin) ]]; then
    [[ $(id -u) == 0 ]] || die "PostgreSQL is not installed; install it with: sudo apt-get install -y postgresql"
    echo "== installing PostgreSQL (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq </dev/null
    apt-get install -y -qq --no-install-recommends postgresql </dev/null >/dev/null
  fi
  PG_BIN=$(pg_bin)
  [[ -n $PG_BIN ]] || die "PostgreSQL binaries (initdb, pg_ctl) not found after installing"
  command -v redis-server >/dev/null 2>&1 \
    || die "redis-server is not installed: apt-get install -y redis-server"
}

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Runs a Postgres binary as the cluster's owner (postgres when we are root).
as_pg() {
  if [[ $(id -u) == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

load_env() {
  DIR=$(cd "$1" && pwd)
  [[ -f $DIR/env.sh ]] || die "$DIR is not a deployment folder (no env.sh)"
  # shellcheck source=/dev/null
  source "$DIR/env.sh"
  PG_BIN=$(pg_bin)
}

pid_of() { cat "$DIR/run/$1.pid" 2>/dev/null || true; }
alive() { local pid; pid=$(pid_of "$1"); [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; }

# Starts a long-running command in its own session (process group), output to DIR/logs/NAME.log.
spawn() {
  local name=$1; shift
  setsid "$@" </dev/null >>"$DIR/logs/$name.log" 2>&1 &
  echo $! >"$DIR/run/$name.pid"
}

start_one() {
  local name=$1
  case $name in
    postgres)
      as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 60 \
        -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start </dev/null >/dev/null || { tail -n 30 "$PG_DIR/postgres.log" >&2; die "postgres did not start"; }
      ;;
    redis-broker | redis-cache)
      local port=$REDIS_BROKER_PORT
      [[ $name == redis-cache ]] && port=$REDIS_CACHE_PORT
      mkdir -p "$DIR/$name"
      spawn "$name" redis-server --port "$port" --bind 127.0.0.1 --dir "$DIR/$name" \
        --save "" --appendonly no --daemonize no
      wait_for "$name" 20 "$PY" -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1); s.sendall(b"PING\r\n")
sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)' "$port"
      ;;
    api-server)
      spawn "$name" "$AIRFLOW" api-server --host 127.0.0.1 --port "$API_PORT" -w 1
      ;;
    scheduler | dag-processor | triggerer)
      spawn "$name" "$AIRFLOW" "$name"
      ;;
    worker-a | worker-b)
      mkdir -p "$DIR/$name/home"
      local log_port=$WORKER_A_LOG_PORT
      [[ $name == worker-b ]] && log_port=$WORKER_B_LOG_PORT
      spawn "$name" env AIRFLOW_HOME="$DIR/$name/home" \
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT="$log_port" \
        "$AIRFLOW" celery worker --celery-hostname "$name@%h" \
        --concurrency "${CELERY_WORKER_CONCURRENCY:-4}"
      ;;
    *) die "unknown component $name" ;;
  esac
}

stop_one() {
  local name=$1 signal=TERM pid
  [[ ${KILL:-0} == 1 ]] && signal=KILL
  if [[ $name == postgres ]]; then
    if [[ -f $PG_DIR/data/postmaster.pid ]]; then
      as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop </dev/null >/dev/null 2>&1 || true
    fi
    return
  fi
  pid=$(pid_of "$name")
  [[ -n $pid ]] || return 0
  # The whole process group, and any descendant that left it (task processes).
  local tree
  tree=$("$PY" - "$pid" <<'EOF' 2>/dev/null || true
import sys, psutil
try:
    root = psutil.Process(int(sys.argv[1]))
    print(" ".join(str(p.pid) for p in [root, *root.children(recursive=True)]))
except psutil.NoSuchProcess:
    pass
EOF
)
  kill -"$signal" -- "-$pid" 2>/dev/null || true
  for p in $tree; do kill -"$signal" "$p" 2>/dev/null || true; done
  for _ in $(seq 1 100); do  # 20 s
    local left=0
    for p in $pid $tree; do kill -0 "$p" 2>/dev/null && left=1; done
    ((left)) || break
    sleep 0.2
  done
  for p in $pid $tree; do kill -KILL "$p" 2>/dev/null || true; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$DIR/run/$name.pid"
}

# wait_for NAME SECONDS COMMAND...: until COMMAND succeeds; fails if NAME's process exits.
wait_for() {
  local name=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [[ $name != - ]] && ! alive "$name"; then
      tail -n 40 "$DIR/logs/$name.log" >&2 || true
      die "$name exited while starting (log: $DIR/logs/$name.log)"
    fi
    ((SECONDS < deadline)) || { tail -n 40 "$DIR/logs/$name.log" >&2 || true; die "$name not ready within $seconds s"; }
    sleep 1
  done
}

write_env() {
  local pg_password=$1 fernet jwt
  fernet=$("$PY" -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')
  jwt=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(32))')
  local db="postgresql+psycopg2://airflow:$pg_password@127.0.0.1:$PG_PORT/airflow"
  {
    # The caller's Airflow settings, connections and example settings first; ours win.
    while IFS= read -r name; do
      printf 'export %s=%q\n' "$name" "${!name}"
    done < <(compgen -e | grep -E '^(AIRFLOW__|AIRFLOW_CONN_|AIRFLOW_VAR_|OAUTHCC_)' || true)
    printf 'export %s=%q\n' \
      PATH "$VENV/bin:$PG_BIN:$PATH" \
      PG_DIR "$PG_DIR" PG_PORT "$PG_PORT" REDIS_BROKER_PORT "$REDIS_BROKER_PORT" REDIS_CACHE_PORT "$REDIS_CACHE_PORT" \
      API_PORT "$API_PORT" WORKER_A_LOG_PORT "$WORKER_A_LOG_PORT" WORKER_B_LOG_PORT "$WORKER_B_LOG_PORT" \
      CELERY_WORKER_CONCURRENCY "${CELERY_WORKER_CONCURRENCY:-4}" \
      AIRFLOW_HOME "$DIR/home" \
      AIRFLOW_CONN_TOKEN_CACHE_REDIS "{\"conn_type\": \"redis\", \"host\": \"127.0.0.1\", \"port\": $REDIS_CACHE_PORT}" \
      AIRFLOW__CORE__EXECUTOR CeleryExecutor \
      AIRFLOW__CORE__LOAD_EXAMPLES "${AIRFLOW__CORE__LOAD_EXAMPLES:-False}" \
      AIRFLOW__CORE__UNIT_TEST_MODE False \
      AIRFLOW__CORE__FERNET_KEY "$fernet" \
      AIRFLOW__DATABASE__SQL_ALCHEMY_CONN "$db" \
      AIRFLOW__CELERY__BROKER_URL "redis://127.0.0.1:$REDIS_BROKER_PORT/0" \
      AIRFLOW__CELERY__RESULT_BACKEND "db+postgresql+psycopg2://airflow:$pg_password@127.0.0.1:$PG_PORT/airflow" \
      AIRFLOW__CORE__EXECUTION_API_SERVER_URL "http://127.0.0.1:$API_PORT/execution/" \
      AIRFLOW__API__BASE_URL "http://127.0.0.1:$API_PORT" \
      AIRFLOW__API_AUTH__JWT_SECRET "$jwt" \
      AIRFLOW__API_AUTH__JWT_ISSUER oauthcc-celery \
      AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC "${AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC:-2}" \
      AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT "${AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT:-60}" \
      AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL 5 \
      AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL "${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:-10}"
  } >"$DIR/env.sh"
  chmod 600 "$DIR/env.sh"
}

write_state() {
  "$PY" - "$DIR" <<'EOF'
import json, os, sys
from pathlib import Path
d = Path(sys.argv[1])
pids = {p.stem: int(p.read_text()) for p in (d / "run").glob("*.pid")}
env = os.environ
state = {
    "dir": str(d),
    "api_url": f"http://127.0.0.1:{env['API_PORT']}",
    "postgres_port": int(env["PG_PORT"]),
    "redis_broker_url": f"redis://127.0.0.1:{env['REDIS_BROKER_PORT']}/0",
    "redis_cache_port": int(env["REDIS_CACHE_PORT"]),
    "homes": {"server": str(d / "home"), **{w: str(d / w / "home") for w in ("worker-a", "worker-b")}},
    "logs": str(d / "logs"),
    "pids": pids,
}
(d / "state.json").write_text(json.dumps(state, indent=2))
EOF
}

cmd_start() {
  [[ $# == 1 ]] || die "usage: celery-deployment.sh start DIR"
  check_python_dependencies
  ensure_postgres
  mkdir -p "$1"
  DIR=$(cd "$1" && pwd)
  [[ -e $DIR/env.sh ]] && die "$DIR already holds a deployment (stop it, or choose an empty folder)"
  mkdir -p "$DIR/run" "$DIR/logs" "$DIR/home"
  # The cluster in its own folder under /tmp: the postgres user must reach it (not DIR's parents).
  PG_DIR=$(mktemp -d /tmp/oauthcc-celery-pg.XXXXXX)
  local started=$SECONDS
  PG_PORT=$(free_port) REDIS_BROKER_PORT=$(free_port) REDIS_CACHE_PORT=${REDIS_CACHE_PORT:-$(free_port)}
  API_PORT=${API_PORT:-$(free_port)} WORKER_A_LOG_PORT=$(free_port) WORKER_B_LOG_PORT=$(free_port)
  local pg_password
  pg_password=$("$PY" -c 'import secrets; print(secrets.token_hex(16))')
  write_env "$pg_password"
  load_env "$DIR"
  CLEANUP_DIR=$DIR

  echo "== postgres (private cluster in $PG_DIR, port $PG_PORT)"
  [[ $(id -u) == 0 ]] && chown postgres: "$PG_DIR"
  (umask 077; echo "$pg_password" >"$PG_DIR/pwfile")
  [[ $(id -u) == 0 ]] && chown postgres: "$PG_DIR/pwfile"
  as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U airflow --pwfile="$PG_DIR/pwfile" \
    --auth=scram-sha-256 -E UTF8 --no-sync </dev/null >"$DIR/logs/initdb.log" 2>&1 \
    || { cat "$DIR/logs/initdb.log" >&2; die "initdb failed"; }
  rm -f "$PG_DIR/pwfile"
  start_one postgres
  PGPASSWORD=$pg_password "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U airflow airflow

  echo "== redis: broker on $REDIS_BROKER_PORT, token cache on $REDIS_CACHE_PORT"
  start_one redis-broker
  start_one redis-cache

  echo "== airflow db migrate"
  "$AIRFLOW" db migrate </dev/null >"$DIR/logs/db-migrate.log" 2>&1 \
    || { tail -n 40 "$DIR/logs/db-migrate.log" >&2; die "airflow db migrate failed"; }

  echo "== api-server (http://127.0.0.1:$API_PORT), scheduler, dag-processor, triggerer, ${WORKERS[*]}"
  for name in api-server scheduler dag-processor triggerer "${WORKERS[@]}"; do start_one "$name"; done
  wait_for api-server "$START_TIMEOUT" "$PY" -c 'import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=5).close()' "http://127.0.0.1:$API_PORT/api/v2/monitor/health"
  for name in "${WORKERS[@]}"; do
    wait_for "$name" "$START_TIMEOUT" grep -q "$name@.* ready" "$DIR/logs/$name.log"
  done
  for name in scheduler dag-processor triggerer; do alive "$name" || die "$name exited: see $DIR/logs/$name.log"; done
  CLEANUP_DIR=
  write_state
  echo "== ready in $((SECONDS - started)) s (state: $DIR/state.json)"
}

cmd_stop() {
  [[ $# == 1 ]] || die "usage: celery-deployment.sh stop DIR"
  [[ -d $1 ]] || return 0
  load_env "$1"
  local name
  # Airflow first (in parallel: each has 20 s to exit before SIGKILL), then Redis and Postgres.
  local stoppers=()
  for name in "${WORKERS[@]}" scheduler triggerer dag-processor api-server; do
    stop_one "$name" &
    stoppers+=($!)
  done
  wait "${stoppers[@]}"
  stop_one redis-broker
  stop_one redis-cache
  stop_one postgres
  [[ $PG_DIR == /tmp/oauthcc-celery-pg.* ]] && rm -rf "$PG_DIR"
  return 0
}

cmd_up() {
  check_python_dependencies
  ensure_postgres
  local base=$ROOT/.airflow/celery port=${AIRFLOW_CELERY_PORT:-8080}
  "$PY" -c "import socket, sys; socket.create_server(('127.0.0.1', int(sys.argv[1]))).close()" "$port" 2>/dev/null \
    || die "port $port on 127.0.0.1 is in use; choose another with AIRFLOW_CELERY_PORT=NNNN make airflow-celery"
  if [[ -f $base/deployment/env.sh ]]; then cmd_stop "$base/deployment"; fi
  rm -rf "$base"
  mkdir -p "$base"
  # The devserver registers demo-client with this secret at start.
  DEVSERVER_DEMO_SECRET=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(24))')
  export DEVSERVER_DEMO_SECRET
  echo "== starting the local authorization server and API"
  "$PY" -m devserver --state-file "$base/devserver.json" --dataset-size 5000 >"$base/devserver.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 150); do [[ -s $base/devserver.json ]] && break; sleep 0.2; done
  [[ -s $base/devserver.json ]] || die "devserver did not start within 30 s ($base/devserver.log)"
  export AIRFLOW__CORE__DAGS_FOLDER=$ROOT/dags_examples AIRFLOW__CORE__TEST_CONNECTION=Enabled
  export OAUTHCC_EXAMPLE_OUTPUT=file://$base/output
  API_PORT=$port cmd_start "$base/deployment"
  CLEANUP_DIR=$DIR
  # The connection in the database (so it shows in the UI), with the shared Redis token cache.
  "$AIRFLOW" connections add example_api --conn-json "$("$PY" - "$base/devserver.json" <<'EOF'
import json, os, sys
state = json.load(open(sys.argv[1]))
print(json.dumps({
    "conn_type": "oauth2_client_credentials",
    "description": "Local authorization server and API, token cache shared through Redis",
    "host": state["api_url"], "login": "demo-client", "password": os.environ["DEVSERVER_DEMO_SECRET"],
    "extra": {"auth_url": state["token_url"], "scope": "read",
              "cache_backend": "redis", "cache_redis_conn_id": "token_cache_redis"},
}))
EOF
)" >/dev/null
  cat <<EOF
== Airflow with CeleryExecutor on http://127.0.0.1:$port (Ctrl-C stops everything)
   Log in as admin; the password is in $DIR/home/simple_auth_manager_passwords.json.generated
   Trigger oauthcc_fan_out (keep the logical date the form fills in): its mapped pulls run on
   worker-a and worker-b, one token request for the run through the token-cache Redis; the
   task logs are in each worker's home under $DIR/.
   Outputs: $base/output   Logs: $DIR/logs
EOF
  while true; do
    for name in api-server scheduler "${WORKERS[@]}"; do
      alive "$name" || die "$name exited: see $DIR/logs/$name.log"
    done
    sleep 5
  done
}

case ${1:-} in
  up) shift; cmd_up "$@" ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  stop-one) shift; load_env "$1"; stop_one "$2" ;;
  start-one) shift; load_env "$1"; start_one "$2"; write_state ;;
  *) sed -n '2,28p' "$0" >&2; exit 2 ;;
esac
