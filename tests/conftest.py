"""Import Airflow before any module of the provider, as Airflow's own processes do.

``auth/errors.py`` bases the exception family on Airflow's exceptions only when Airflow is
already imported (importing it from there would re-enter the half-imported package through
Airflow's provider discovery). Without this, a test that imports the core first would see
plain exceptions where every Airflow process sees ``AirflowException`` subclasses.
"""

from __future__ import annotations

import importlib.util

import pytest

if importlib.util.find_spec("airflow") is not None:
    import airflow  # noqa: F401


# Tests of version-specific code: the compat imports, the connection form, lineage, deferral
# (triggers, sensors), the Airflow exception family, log leak scans, object storage output,
# the example DAGs under `airflow dags test`. tests/unit/test_versioned_files.py finds the
# files that touch these and fails when one is missing here.
# scripts/test.sh runs only these (marker "versioned") on the middle versions, Airflow 3.0
# and 3.1; the whole suite runs on the newest (3.3) and the oldest (2.11).
VERSIONED = {
    # unit
    "test_airflow_compat.py",
    "test_airflow_version_guard.py",
    "test_defer_timeouts.py",
    "test_dependency_floors.py",
    "test_event_trigger_airflow2.py",
    "test_leak_scan_shapes.py",
    "test_legacy_connection_form.py",
    "test_masking.py",
    "test_output.py",
    "test_trigger_events.py",
    "test_trigger_serialization.py",
    "test_trust_core.py",
    # integration
    "test_connection_options.py",
    "test_deferrable_operator.py",
    "test_deferrable_payload_cap.py",
    "test_deferrable_retry_after.py",
    "test_deferrable_sensor.py",
    "test_deferrable_tls_proxy.py",
    "test_deferrable_trigger.py",
    "test_dpop.py",  # the operator's pull with DPoP
    "test_egress_gate.py",
    "test_error_family.py",
    "test_hook_pull_api.py",  # output (ObjectStoragePath) and the async hook's connection
    "test_incremental_pull.py",
    "test_event_driven_pull.py",  # marker "load": newest only
    "test_event_trigger.py",
    "test_operator.py",
    "test_operator_first_use.py",
    "test_operator_import.py",
    "test_operator_lineage.py",
    "test_operator_on_kill.py",
    "test_output_s3.py",
    "test_pagination_origin.py",
    "test_stream_download.py",
    "test_task_token_params.py",
    "test_sender_constrained_deferrable.py",
    "test_trigger_scale.py",  # marker "load": newest only, listed for completeness
    # e2e
    "test_airflow_cli.py",
    "test_celery_deployment.py",  # marker "celery": newest only
    "test_connection_form.py",
    "test_connection_test_guard.py",
    "test_deferrable_dags.py",
    "test_example_dags.py",
    "test_fail_fast_dags.py",
    "test_hook_meta.py",
    "test_leak_scan.py",
    "test_real_triggerer.py",  # marker "load": newest only
    "test_sensor_reschedule.py",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in VERSIONED:
            item.add_marker(pytest.mark.versioned)
