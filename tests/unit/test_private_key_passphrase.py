"""An encrypted private key with a wrong or missing passphrase: a clear configuration error that
names the field and the reason, and shows neither the key nor any passphrase."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.errors import OAuthCCConfigError

RIGHT = "r1ght-Passphrase-77"
WRONG = "wr0ng-Passphrase-88"


def encrypted_pem(kind: str) -> str:
    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "RSA"
        else ec.generate_private_key(ec.SECP256R1())
    )
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(RIGHT.encode()),
    ).decode()


def config(pem: str, passphrase: str | None) -> ClientConfig:
    extra = {
        "auth_url": "https://idp.example.com/token",
        "auth_method": "private_key_jwt",
        "private_key": pem,
    }
    if passphrase is not None:
        extra["private_key_passphrase"] = passphrase
    return ClientConfig.from_connection(client_id="app", client_secret=None, extra=extra)


@pytest.mark.parametrize("kind", ["RSA", "EC"])
@pytest.mark.parametrize("passphrase", [WRONG, None])
def test_wrong_or_missing_passphrase_is_a_clear_config_error(
    kind: str, passphrase: str | None
) -> None:
    pem = encrypted_pem(kind)
    with pytest.raises(OAuthCCConfigError) as info:
        config(pem, passphrase)
    assert info.value.field == "private_key"
    assert "passphrase" in str(info.value)
    for secret in (RIGHT, WRONG, pem.splitlines()[1]):
        assert secret not in str(info.value) and secret not in repr(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize("kind", ["RSA", "EC"])
def test_right_passphrase_is_accepted(kind: str) -> None:
    assert config(encrypted_pem(kind), RIGHT).private_key_passphrase == RIGHT


def test_a_wrong_passphrase_that_decrypts_to_garbage_still_names_the_passphrase() -> None:
    """About one wrong passphrase in 256 decrypts a PKCS#8 key to bytes whose padding looks
    right: cryptography then says it cannot deserialize the key data, and not that the password
    is wrong. The error must still point at the passphrase, not at the key's format."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    pem = encrypted_pem("EC")
    for attempt in range(20_000):
        wrong = f"{WRONG}-{attempt}"
        try:
            load_pem_private_key(pem.encode(), password=wrong.encode())
        except ValueError as exc:
            if "password" not in str(exc).lower():
                break
    else:
        pytest.fail("no wrong passphrase decrypted to garbage in 20,000 attempts")
    with pytest.raises(OAuthCCConfigError, match="passphrase") as info:
        config(pem, wrong)
    assert wrong not in str(info.value)
