"""TLS failure messages and the verify-off warning, from the error texts OpenSSL produces."""

from __future__ import annotations

import logging
import uuid
import warnings

import pytest
import requests
from urllib3.exceptions import InsecureRequestWarning

from airflow_provider_oauthcc.auth.tls import handshake_failure, warn_if_unverified

SECRET = "s3cret-Value-9f8e7d"


def ssl_error(openssl: str) -> requests.exceptions.SSLError:
    """As requests words it, with the request URL (which must never reach the message)."""
    return requests.exceptions.SSLError(
        f"HTTPSConnectionPool(host='idp.example.com', port=443): Max retries exceeded with url: "
        f"/token?client_secret={SECRET} (Caused by SSLError(SSLError(1, {openssl!r})))"
    )


@pytest.mark.parametrize(
    ("openssl", "has_client_cert", "expected"),
    [
        (
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local "
            "issuer certificate (_ssl.c:1006)",
            False,
            "its certificate is not signed by a CA this machine trusts (certificate verify "
            "failed: unable to get local issuer certificate); set 'verify' to the path of the "
            "CA bundle (PEM) that signed it",
        ),
        (
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: Hostname mismatch, "
            "certificate is not valid for 'idp.example.com'. (_ssl.c:1006)",
            False,
            "its certificate is not issued for this host name (certificate verify failed: "
            "Hostname mismatch, certificate is not valid for 'idp.example.com'); use a host name "
            "the certificate lists in the URL ('verify' cannot fix a name mismatch)",
        ),
        (
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired "
            "(_ssl.c:1006)",
            False,
            "its certificate is outside its validity period (certificate verify failed: "
            "certificate has expired); renew it",
        ),
        (
            "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required "
            "(_ssl.c:2580)",
            False,
            "the server asked for a client certificate and got none (tlsv13 alert certificate "
            "required); set 'client_cert' (and 'client_cert_key') to the PEM files of a "
            "certificate issued by a CA the server trusts, with auth_method 'tls_client_auth'",
        ),
        (
            "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca (_ssl.c:2580)",
            True,
            "the server rejected the client certificate (tlsv1 alert unknown ca); 'client_cert' "
            "must be issued by a CA the server trusts for client authentication",
        ),
        (
            "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate (_ssl.c:2580)",
            True,
            "the server rejected the client certificate (sslv3 alert bad certificate); "
            "'client_cert' must be issued by a CA the server trusts for client authentication",
        ),
        (
            "[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] sslv3 alert handshake failure (_ssl.c:1006)",
            False,
            "the server broke off the handshake (sslv3 alert handshake failure); if it requires "
            "a client certificate, set 'client_cert' (and 'client_cert_key') to the PEM files "
            "of a certificate issued by a CA the server trusts, with auth_method "
            "'tls_client_auth'",
        ),
        (
            "EOF occurred in violation of protocol (_ssl.c:2427)",
            False,
            "the server broke off the handshake (EOF occurred in violation of protocol); if it "
            "requires a client certificate, set 'client_cert' (and 'client_cert_key') to the PEM "
            "files of a certificate issued by a CA the server trusts, with auth_method "
            "'tls_client_auth'",
        ),
        (
            "[SSL] PEM lib (_ssl.c:3900)",
            True,
            "the client certificate or key cannot be used (PEM lib); 'client_cert' must be a "
            "PEM certificate and 'client_cert_key' its unencrypted PEM private key",
        ),
        (
            "[X509: KEY_VALUES_MISMATCH] key values mismatch (_ssl.c:3926)",
            True,
            "the client certificate or key cannot be used (key values mismatch); 'client_cert' "
            "must be a PEM certificate and 'client_cert_key' its unencrypted PEM private key",
        ),
        (
            "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)",
            False,
            "the server did not answer in TLS (wrong version number); does the URL use https "
            "for an http port?",
        ),
        (
            "[SSL] record layer failure (_ssl.c:1000)",
            False,
            "the server did not answer in TLS (record layer failure); does the URL use https "
            "for an http port?",
        ),
        (
            "[SSL: NO_CIPHERS_AVAILABLE] no ciphers available (_ssl.c:1006)",
            False,
            "no ciphers available; check 'verify' (CA bundle) and, for mutual TLS, 'client_cert'",
        ),
    ],
)
def test_each_failure_names_its_cause_and_fix(
    openssl: str, has_client_cert: bool, expected: str
) -> None:
    message = handshake_failure(ssl_error(openssl), has_client_cert=has_client_cert)
    assert message == expected
    assert SECRET not in message and "idp.example.com'," not in message


def test_an_unrecognised_text_is_not_quoted() -> None:
    message = handshake_failure(
        requests.exceptions.SSLError(f"strange failure {SECRET}"), has_client_cert=False
    )
    assert message.startswith("TLS error;") and SECRET not in message


def unique_url() -> str:
    return f"https://{uuid.uuid4().hex[:12]}.example:8443/oauth/token"


def test_verify_off_is_logged_once_per_peer_and_origin(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    url = unique_url()
    for _ in range(3):
        warn_if_unverified(False, url, "token endpoint")
    warn_if_unverified(False, url, "API")
    origin = url.removesuffix("/oauth/token")
    assert [r.getMessage() for r in caplog.records] == [
        f"TLS certificate verification is off for the token endpoint {origin} ('verify': "
        "false): anyone on the network path can pose as it. Set 'verify' to the CA bundle "
        "path instead.",
        f"TLS certificate verification is off for the API {origin} ('verify': false): anyone "
        "on the network path can pose as it. Set 'verify' to the CA bundle path instead.",
    ]


@pytest.mark.parametrize(
    ("verify", "url"),
    [
        (True, unique_url()),
        ("/etc/ssl/ca.pem", unique_url()),
        (False, unique_url().replace("https://", "http://")),
        (False, None),
    ],
)
def test_nothing_to_say_when_verifying_or_not_tls(
    caplog: pytest.LogCaptureFixture, verify: bool | str, url: str | None
) -> None:
    caplog.set_level(logging.WARNING)
    warn_if_unverified(verify, url, "API")
    assert caplog.records == []


def test_urllib3_warning_is_silenced_for_that_host_only() -> None:
    url = unique_url()
    host = url.split("//")[1].split(":")[0]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        warn_if_unverified(False, url, "API")
        warn_if_unverified(False, url, "API")
        for name in (host, "other.example"):
            warnings.warn(
                f"Unverified HTTPS request is being made to host '{name}'. Adding certificate "
                "verification is strongly advised.",
                InsecureRequestWarning,
                stacklevel=1,
            )
    assert [str(w.message).split("'")[1] for w in seen] == ["other.example"]


def test_urllib3_warning_stays_silenced_when_a_later_filter_shows_every_warning() -> None:
    """A filter added after ours (pytest's recwarn, ``warnings.catch_warnings`` with
    ``simplefilter("always")``, a library's own setup) sits in front of it; the next request
    must put ours back in front rather than find it further down and stop there."""
    url = unique_url()
    host = url.split("//")[1].split(":")[0]
    with warnings.catch_warnings(record=True) as seen:
        warn_if_unverified(False, url, "API")
        warnings.simplefilter("always")
        warn_if_unverified(False, url, "API")
        warnings.warn(
            f"Unverified HTTPS request is being made to host '{host}'. Adding certificate "
            "verification is strongly advised.",
            InsecureRequestWarning,
            stacklevel=1,
        )
    assert [w for w in seen if issubclass(w.category, InsecureRequestWarning)] == []
