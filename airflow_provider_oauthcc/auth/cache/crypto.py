"""Encryption of shared cache entries: whoever can read the cache but lacks the client
credential learns nothing from it, and cannot plant a token we would accept.

AES-256-GCM; the key comes from HKDF-SHA256 over the credential of the configured auth method
(secret, private key PEM, or TLS client certificate and key), salted with the deployment secret
(Airflow's fernet key, see ``deployment``) and with the cache key as context; the cache key is
the associated data, so an entry copied to another key does not decrypt either. Without the
deployment secret, whoever reads the cache cannot even test guesses of a weak client secret.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.token import Token

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT = b"oauthcc-2:"
NONCE_SIZE = 12
HKDF_SALT = b"airflow-provider-oauthcc token cache v2"


class NoCredentialError(Exception):
    """The connection holds no credential to derive an encryption key from."""


class TokenCipher:
    """Seals tokens for one client credential; ``open`` returns None for anything not ours."""

    def __init__(self, credential: bytes) -> None:
        if not credential:
            raise NoCredentialError("no client credential to derive the cache key from")
        self._credential = credential
        self._aeads: dict[tuple[bytes, str], AESGCM] = {}

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
        from airflow_provider_oauthcc.auth.deployment import deployment_secret

        salt = HKDF_SALT + deployment_secret()
        aead = self._aeads.get((salt, key))
        if aead is None:
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
            from cryptography.hazmat.primitives.kdf.hkdf import HKDF

            derived = HKDF(
                algorithm=hashes.SHA256(), length=32, salt=salt, info=key.encode()
            ).derive(self._credential)
            aead = self._aeads[(salt, key)] = AESGCM(derived)
        return aead


def credential_of(config: ClientConfig) -> bytes:
    """The credential of the configured auth method: what the encryption key is derived from."""
    credential = config.credential()
    if not credential:
        raise NoCredentialError("the connection has no client secret or key")
    return credential
