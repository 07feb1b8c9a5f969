#!/usr/bin/env bash
# `make test`: lint, types, the built wheel in clean virtualenvs (Airflow 3.3, 3.0, 2.11; and
# installed without constraints on 2.11, 3.0, 3.1 and the newest), the
# whole suite on the newest (3.3) and the oldest (2.11) supported Airflow, and on the middle
# versions (3.0, 3.1) the tests of version-specific code (marker "versioned",
# tests/conftest.py). Stages of different Airflow versions run side by side where they fit two
# cores; the load and Celery stages run alone. Prints how long each stage took.
# `scripts/test.sh lint` runs only the static checks.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONDONTWRITEBYTECODE=1

declare -a SUMMARY=()
stage() {
  local name=$1; shift
  local start=$SECONDS
  echo
  echo "=== $name"
  "$@"
  SUMMARY+=("$(printf '%-34s %4ds' "$name" $((SECONDS - start)))")
}
# NAME COMMAND [NAME COMMAND ...]: stages side by side (the machine has two cores; the tests
# of one Airflow mostly wait on servers and subprocesses), each into its own log, printed in
# order once all are done. COMMAND is split on spaces. Fails if any failed.
together() {
  local dir start=$SECONDS failed=0 i=0 rc secs
  dir=$(mktemp -d /tmp/oauthcc-stages.XXXXXX)
  local -a names=() pids=()
  while [[ $# -gt 0 ]]; do
    names+=("$1")
    (
      begin=$SECONDS
      # shellcheck disable=SC2086
      if $2 >"$dir/$i.log" 2>&1; then rc=0; else rc=$?; fi
      echo "$rc $((SECONDS - begin))" >"$dir/$i.rc"
    ) &
    pids+=($!)
    shift 2
    i=$((i + 1))
  done
  echo
  echo "=== side by side: $(IFS=,; echo "${names[*]}" | sed 's/,/, /g')"
  local next=$((start + 300)) pid running=1
  while ((running)); do
    sleep 5
    running=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && running=1; done
    if ((running && SECONDS >= next)); then
      echo "    ... $((SECONDS - start)) s"
      next=$((next + 300))
    fi
  done
  wait "${pids[@]}" || true
  for i in "${!names[@]}"; do
    read -r rc secs <"$dir/$i.rc"
    echo
    echo "=== ${names[$i]} (side by side; exit $rc)"
    cat "$dir/$i.log"
    SUMMARY+=("$(printf '%-34s %4ds  side by side' "${names[$i]}" "$secs")")
    [[ $rc == 0 ]] || failed=1
  done
  SUMMARY+=("$(printf '%-34s %4ds' "  (those side by side, in all)" $((SECONDS - start)))")
  rm -rf "$dir"
  return $failed
}
report() {
  echo
  echo "=== stage times"
  printf '%s\n' "${SUMMARY[@]}"
}
trap report EXIT

stage "setup: uv, locked environments" scripts/ensure-env.sh --versions
stage "setup: system packages" scripts/ensure-system-packages.sh \
  redis-server:redis-server chromium:chromium postgresql:pg_ctlcluster
stage "lint: ruff check + format" bash -c \
  '.venv/bin/ruff check . && .venv/bin/ruff format --check .'
stage "types: mypy (strict)" .venv/bin/mypy
[[ "${1:-}" == "lint" ]] && exit 0

airflow_version() { "$1/bin/python" -c 'from importlib.metadata import version; print(version("apache-airflow"))'; }
AIRFLOW_VERSION=$(airflow_version .venv)
FLOOR_VERSION=$(airflow_version .venv-2.11)
V30_VERSION=$(airflow_version .venv-3.0)
V31_VERSION=$(airflow_version .venv-3.1)
wheel() { scripts/test-wheel.sh --airflow "$1"; }
# The wheel as many users install it (no constraints file) on every supported line: one small
# virtualenv each, from uv's cache; about 30 s per line.
unpinned_wheels() {
  local line
  for line in 2.11 3.0 3.1 latest; do scripts/test-wheel.sh --airflow "$line" --unpinned || return 1; done
}
# OAUTHCC_TEST_STAGE: what the stage's environment must have (tests/support/stage.py).
newest() { OAUTHCC_TEST_STAGE=newest scripts/pytest.sh .venv -m "not celery and not load"; }
floor() { OAUTHCC_TEST_STAGE=floor scripts/pytest.sh .venv-2.11 -m "not celery and not load"; }
versioned() { OAUTHCC_TEST_STAGE=${1#.venv-} scripts/pytest.sh "$1" -m "versioned and not celery and not load"; }

together "wheel: Airflow $AIRFLOW_VERSION" "wheel latest" \
  "wheel: Airflow $V30_VERSION" "wheel 3.0" \
  "wheel: Airflow $FLOOR_VERSION (floor)" "wheel 2.11" \
  "wheel unpinned: Airflow 2.11, 3.0, 3.1, newest" unpinned_wheels
together "tests: Airflow $AIRFLOW_VERSION (newest)" newest \
  "tests: Airflow $FLOOR_VERSION (floor)" floor
# The scale and real-deployment tests (marker "load") exercise version-independent code at
# length and measure the machine: on the newest Airflow only, and alone.
stage "tests: load, Airflow $AIRFLOW_VERSION" scripts/pytest.sh .venv -m "load and not celery"
# One CeleryExecutor deployment (PostgreSQL, Redis, two workers) for the scale-out tests.
stage "tests: Celery deployment, Airflow $AIRFLOW_VERSION" scripts/pytest.sh .venv -m celery
together "tests: Airflow $V30_VERSION (versioned)" "versioned .venv-3.0" \
  "tests: Airflow $V31_VERSION (versioned)" "versioned .venv-3.1"
