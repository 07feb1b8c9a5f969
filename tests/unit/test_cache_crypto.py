"""Encryption of shared cache entries."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_oauthcc.auth.cache.crypto import (
    FORMAT,
    NoCredentialError,
    TokenCipher,
    credential_of,
)

from .cache_support import SECRET, config, token

KEY = '["https://idp/t","app","read","","","client_secret_basic"]'


def test_round_trip_and_nothing_in_clear() -> None:
    cipher = TokenCipher(SECRET.encode())
    original = token("tok-plain-visible-123")
    blob = cipher.seal(KEY, original)
    assert blob.startswith(FORMAT)
    for clear in (b"tok-plain-visible-123", SECRET.encode(), b"app", b"Bearer", b"expires_at"):
        assert clear not in blob
    assert cipher.open(KEY, blob) == original
    assert cipher.seal(KEY, original) != blob  # fresh nonce every time


def test_other_credential_other_key_or_tampering_is_not_ours() -> None:
    blob = TokenCipher(SECRET.encode()).seal(KEY, token())
    assert TokenCipher(b"another-secret").open(KEY, blob) is None
    assert TokenCipher(SECRET.encode()).open(KEY + "x", blob) is None  # AAD binds the key
    flipped = blob[:-1] + bytes([blob[-1] ^ 1])
    assert TokenCipher(SECRET.encode()).open(KEY, flipped) is None


@pytest.mark.parametrize("junk", [b"", b"garbage", FORMAT, FORMAT + b"\0" * 40, b"{}" * 100])
def test_junk_is_not_ours(junk: bytes) -> None:
    assert TokenCipher(SECRET.encode()).open(KEY, junk) is None


def test_valid_ciphertext_of_a_non_token_is_not_ours() -> None:
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    cipher = TokenCipher(SECRET.encode())
    aead: AESGCM = cipher._aead(KEY)
    nonce = os.urandom(12)
    blob = FORMAT + nonce + aead.encrypt(nonce, b'["a list"]', KEY.encode())
    assert cipher.open(KEY, blob) is None


def test_credential_is_secret_or_private_key_or_tls_key(tmp_path: Path) -> None:
    assert credential_of(config()) == SECRET.encode()
    key_file = tmp_path / "client.key"
    key_file.write_bytes(b"-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n")
    cert_file = tmp_path / "client.pem"
    cert_file.write_text("cert")
    tls = config(
        secret=None,
        auth_method="tls_client_auth",
        client_cert=str(cert_file),
        client_cert_key=str(key_file),
    )
    assert credential_of(tls) == cert_file.read_bytes() + b"\0" + key_file.read_bytes()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    signer = config(secret=None, auth_method="private_key_jwt", private_key=pem)
    assert credential_of(signer) == pem.strip().encode()
    with pytest.raises(NoCredentialError):
        TokenCipher(b"")
    assert "credential" in repr(TokenCipher(SECRET.encode()))
    assert SECRET not in repr(TokenCipher(SECRET.encode()))
