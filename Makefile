# Two commands on a fresh machine: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash

.PHONY: demo demo-events test lint mutants env airflow airflow-celery bench clean

demo:
	@scripts/demo.sh

# The event-driven example (an AssetWatcher on the API's change feed) in a real deployment.
demo-events:
	@scripts/demo-events.sh

test:
	@scripts/test.sh

lint:
	@scripts/test.sh lint

# Plants each defect of scripts/mutants.toml in a copy of the project and runs its tests.
mutants:
	@scripts/ensure-env.sh --floor && .venv/bin/python scripts/mutants.py

env:
	@scripts/ensure-env.sh

airflow:
	@scripts/airflow-ui.sh

airflow-celery:
	@scripts/celery-deployment.sh up

bench:
	@scripts/bench.sh

clean:
	rm -rf .venv .venv-floor .venv-2.11 .venv-3.0 .venv-3.1 .demo .airflow .pytest_cache .mypy_cache .ruff_cache
