"""The OAuth 2.0 client-credentials core: importable and testable without Airflow."""
