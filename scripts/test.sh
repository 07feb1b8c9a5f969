#!/usr/bin/env bash
# `make test`: lint, types, the built wheel in a clean virtualenv, the whole suite on the
# newest (3.3) and the oldest (2.11) supported Airflow, and on the middle versions (3.0, 3.1)
# the tests of version-specific code (marker "versioned", tests/conftest.py).
# Prints how long each stage took. `scripts/test.sh lint` runs only the static checks.
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
stage "wheel: build, install, dags test" scripts/test-wheel.sh
stage "wheel: Airflow $FLOOR_VERSION (floor)" scripts/test-wheel.sh --airflow 2.11
stage "tests: Airflow $AIRFLOW_VERSION (newest)" scripts/pytest.sh .venv -m "not celery"
# One CeleryExecutor deployment (PostgreSQL, Redis, two workers) for the scale-out tests.
stage "tests: Celery deployment, Airflow $AIRFLOW_VERSION" scripts/pytest.sh .venv -m celery
# The scale and real-deployment tests (marker "load") exercise version-independent code at
# length: they run on the newest Airflow only, which keeps make test well inside its budget.
stage "tests: Airflow $FLOOR_VERSION (floor)" scripts/pytest.sh .venv-2.11 -m "not celery and not load"
stage "tests: Airflow $V30_VERSION (versioned)" scripts/pytest.sh .venv-3.0 -m "versioned and not celery and not load"
stage "tests: Airflow $V31_VERSION (versioned)" scripts/pytest.sh .venv-3.1 -m "versioned and not celery and not load"
