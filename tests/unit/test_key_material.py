"""Keys and certificates as file paths or inline PEM."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.errors import OAuthCCConfigError
from devserver.keys import generate_private_key_pem
from devserver.pki import make_dev_pki


def config(**extra: object) -> ClientConfig:
    return ClientConfig.from_connection(
        client_id="etl",
        client_secret=None,
        extra={"auth_url": "https://idp.example.com/token", **extra},
    )


def test_private_key_from_a_file_is_read_again_when_the_connection_is(tmp_path: Path) -> None:
    first, _ = generate_private_key_pem("ES256")
    second, _ = generate_private_key_pem("ES256")
    path = tmp_path / "key.pem"
    path.write_text(first)
    before = config(auth_method="private_key_jwt", private_key=str(path))
    assert before.private_key == first and first in before.secrets
    path.write_text(second)  # rotated
    after = config(auth_method="private_key_jwt", private_key=str(path))
    assert after.private_key == second
    assert after.cache_key != before.cache_key  # a new key is a new identity


def test_a_missing_key_file_is_named_and_a_non_pem_value_never_quoted(tmp_path: Path) -> None:
    with pytest.raises(OAuthCCConfigError, match=r"cannot read the PEM file .*nope\.pem"):
        config(auth_method="private_key_jwt", private_key=str(tmp_path / "nope.pem"))
    with pytest.raises(OAuthCCConfigError) as info:
        config(auth_method="private_key_jwt", private_key="MIIEvQIBADANBgkqhkiG9w0BAQEFAASC")
    assert "MIIEvQ" not in str(info.value)


def test_inline_certificate_and_key_become_private_files(tmp_path: Path) -> None:
    pki = make_dev_pki(tmp_path, client_ids=["etl"])
    cert, key = pki.clients["etl"].cert.read_text(), pki.clients["etl"].key.read_text()
    got = config(auth_method="tls_client_auth", client_cert=cert, private_key=key)
    assert isinstance(got.api_client_cert, tuple)
    cert_path, key_path = got.api_client_cert
    assert Path(cert_path).read_text().strip() == cert.strip()
    assert Path(key_path).read_text().strip() == key.strip()
    for path in (cert_path, key_path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(Path(path).parent).st_mode) == 0o700
    assert key.strip() in got.secrets and key.strip() not in repr(got)
    # The same connection given as file paths is the same identity.
    by_path = config(
        auth_method="tls_client_auth",
        client_cert=str(pki.clients["etl"].cert),
        client_cert_key=str(pki.clients["etl"].key),
    )
    assert by_path.api_client_cert == (
        str(pki.clients["etl"].cert),
        str(pki.clients["etl"].key),
    )


def test_mtls_needs_a_certificate_and_other_methods_send_none_to_the_api(tmp_path: Path) -> None:
    with pytest.raises(OAuthCCConfigError, match="self_signed_tls_client_auth needs a PEM"):
        config(auth_method="self_signed_tls_client_auth")
    with pytest.raises(OAuthCCConfigError, match="file not found"):
        config(auth_method="tls_client_auth", client_cert=str(tmp_path / "missing.pem"))
    pem, _ = generate_private_key_pem("ES256")
    assert config(auth_method="private_key_jwt", private_key=pem).api_client_cert is None
