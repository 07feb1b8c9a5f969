#!/usr/bin/env bash
# `make demo-events`: the event-driven example in a real Airflow deployment (scripts/demo_events.py).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-env.sh
export PYTHONPATH=$PWD
exec .venv/bin/python scripts/demo_events.py
