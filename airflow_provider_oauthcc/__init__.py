"""Apache Airflow provider for OAuth 2.0 client-credentials protected HTTP APIs."""

__version__ = "0.1.0"
