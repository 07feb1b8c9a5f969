def get_provider_info():
    return {"package-name": "airflow-provider-oauthcc", "name": "OAuth CC", "description": "x", "versions": ["0.1.0"], "connection-types": []}
