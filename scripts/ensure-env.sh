#!/usr/bin/env bash
# Installs uv when missing and syncs the locked environments:
#   .venv        newest supported Airflow (default groups)
#   .venv-floor  oldest supported Airflow (only with --floor)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v uv >/dev/null 2>&1 && ! python3 -m uv --version >/dev/null 2>&1; then
  echo "== installing uv"
  python3 -m pip install --quiet --disable-pip-version-check uv
fi
if command -v uv >/dev/null 2>&1; then UV=(uv); else UV=(python3 -m uv); fi

"${UV[@]}" sync --frozen --quiet
if [[ "${1:-}" == "--floor" ]]; then
  UV_PROJECT_ENVIRONMENT=.venv-floor "${UV[@]}" sync --frozen --quiet \
    --no-default-groups --group dev --group airflow-floor
fi
