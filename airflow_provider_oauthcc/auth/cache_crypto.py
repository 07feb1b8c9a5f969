"""Encryption of shared cache entries: whoever can read the cache but lacks the client
credential learns nothing from it, and cannot plant a token we would accept.

AES-256-GCM; the key comes from HKDF-SHA256 over the client credential (secret, private key
PEM or TLS client key) with the cache key as context, and the cache key is the associated data,
so an entry copied to another key does not decrypt either.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.token import Token

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT = b"oauthcc-1:"
NONCE_SIZE = 12
HKDF_SALT = b"airflow-provider-oauthcc token cache v1"


class NoCredentialError(Exception):
    """The connection holds no credential to derive an encryption key from."""


class TokenCipher:
    """Seals tokens for one client credential; ``open`` returns None for anything not ours."""

    def __init__(self, credential: bytes) -> None:
        if not credential:
            raise NoCredentialError("no client credential to derive the cache key from")
        self._credential = credential
        self._aeads: dict[str, AESGCM] = {}

    def __repr__(self) -> str:
        return "TokenCipher(<credential hidden>)"

    def seal(self, key: str, token: Token) -> bytes:
        nonce = os.urandom(NONCE_SIZE)
        plaintext = json.dumps(token.to_dict(), separators=(",", ":")).encode()
        return FORMAT + nonce + self._aead(key).encrypt(nonce, plaintext, key.encode())

    def open(self, key: str, blob: bytes) -> Token | None:
        from cryptography.exceptions import InvalidTag

        if not blob.startswith(FORMAT) or len(blob) < len(FORMAT) + NONCE_SIZE + 16:
            return None
        nonce = blob[len(FORMAT) : len(FORMAT) + NONCE_SIZE]
        try:
            plaintext = self._aead(key).decrypt(
                nonce, blob[len(FORMAT) + NONCE_SIZE :], key.encode()
            )
            data: Any = json.loads(plaintext)
            return Token.from_dict(data)
        except (InvalidTag, ValueError, KeyError, TypeError, AttributeError):
            return None

    def _aead(self, key: str) -> AESGCM:
        aead = self._aeads.get(key)
        if aead is None:
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
            from cryptography.hazmat.primitives.kdf.hkdf import HKDF

            derived = HKDF(
                algorithm=hashes.SHA256(), length=32, salt=HKDF_SALT, info=key.encode()
            ).derive(self._credential)
            aead = self._aeads[key] = AESGCM(derived)
        return aead


def credential_of(config: ClientConfig) -> bytes:
    """The secret that proves the client's identity: what the cache key is derived from."""
    if config.client_secret:
        return config.client_secret.encode()
    if config.private_key:
        return config.private_key.encode()
    key_file = config.client_cert_key or config.client_cert
    if key_file:
        # tls_client_auth: the TLS private key is the credential.
        with open(key_file, "rb") as handle:
            return handle.read()
    raise NoCredentialError("the connection has no client secret or key")
