"""On Airflow 2 (no asset watchers) the event trigger's module imports, and the trigger says
what it needs."""

from __future__ import annotations

import pytest

from airflow_provider_oauthcc.triggers import oauth_http_event


@pytest.mark.skipif(oauth_http_event._HAS_WATCHERS, reason="Airflow 3 has asset watchers")
def test_the_trigger_says_it_needs_airflow_3() -> None:
    with pytest.raises(RuntimeError, match=r"needs Airflow 3\.0 or newer"):
        oauth_http_event.OAuthHttpEventTrigger("c", "/v1/changes")
