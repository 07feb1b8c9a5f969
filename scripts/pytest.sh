#!/usr/bin/env bash
# Runs the suite in one environment with a throwaway AIRFLOW_HOME. Usage: pytest.sh VENV [args]
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$1; shift
home=$(mktemp -d /tmp/oauthcc-airflow-home.XXXXXX)
trap 'rm -rf "$home"' EXIT
export AIRFLOW_HOME=$home
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__UNIT_TEST_MODE=False
export PATH="$PWD/$venv/bin:$PATH"
"$venv/bin/python" -m pytest -q -p no:cacheprovider --durations=15 "$@"
