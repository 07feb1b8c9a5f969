#!/usr/bin/env bash
# Installs uv when missing and syncs the locked environments:
#   .venv        newest supported Airflow (default groups)
#   .venv-2.11   oldest supported Airflow 2.11 with every declared minimum (group airflow-floor;
#                with --floor or --versions)
#   .venv-3.0    Airflow 3.0 (group airflow-3-0; with --versions)
#   .venv-3.1    Airflow 3.1.0 (group airflow-3-1; with --versions)
# Usage: ensure-env.sh [--floor | --versions]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v uv >/dev/null 2>&1 && ! python3 -m uv --version >/dev/null 2>&1; then
  echo "== installing uv"
  python3 -m pip install --quiet --disable-pip-version-check uv
fi
if command -v uv >/dev/null 2>&1; then UV=(uv); else UV=(python3 -m uv); fi

"${UV[@]}" sync --frozen --quiet
sync_group() {  # VENV GROUP
  UV_PROJECT_ENVIRONMENT=$1 "${UV[@]}" sync --frozen --quiet \
    --no-default-groups --group dev --group "$2"
}
case "${1:-}" in
  --floor) sync_group .venv-2.11 airflow-floor ;;
  --versions)
    sync_group .venv-2.11 airflow-floor
    sync_group .venv-3.0 airflow-3-0
    sync_group .venv-3.1 airflow-3-1
    ;;
  "") ;;
  *) echo "usage: $0 [--floor | --versions]" >&2; exit 2 ;;
esac
