#!/usr/bin/env bash
# `make bench`: every benchmark; each prints ratios against a baseline measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-env.sh
scripts/ensure-system-packages.sh redis-server:redis-server
export AIRFLOW_HOME=${AIRFLOW_HOME:-$(mktemp -d /tmp/oauthcc-bench-home.XXXXXX)}
for bench in bench/*.py; do
  # page_server.py is the servers' module (run by the benches), not a benchmark
  [[ $bench == bench/page_server.py ]] && continue
  echo
  echo "=== $bench"
  .venv/bin/python "$bench"
done
