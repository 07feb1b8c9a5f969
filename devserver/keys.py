"""Key generation for the dev server and for tests that need client key pairs."""

from __future__ import annotations

import warnings
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey

ClientKeyAlgorithm = Literal["RS256", "ES256", "PS256"]

#: Algorithms accepted in client assertions, by client-authentication method.
SECRET_JWT_ALGORITHMS = ("HS256", "HS384", "HS512")
PRIVATE_KEY_JWT_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
)


def generate_private_key_pem(alg: ClientKeyAlgorithm = "RS256") -> tuple[str, dict[str, Any]]:
    """Return ``(private_pem, public_jwk)`` for a new client key pair.

    The JWK carries ``kid`` (its RFC 7638 thumbprint), ``alg`` and ``use``, ready to
    register with ``DevServer.add_client(public_jwk=...)``.
    """
    if alg in ("RS256", "PS256"):
        private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = rsa.generate_private_key(
            public_exponent=65537, key_size=2048
        )
        key_cls: type[RSAKey] | type[ECKey] = RSAKey
    elif alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
        key_cls = ECKey
    else:
        raise ValueError(f"unsupported key algorithm {alg!r}; use RS256, ES256 or PS256")

    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    jwk = key_cls.import_key(pem, {"alg": alg, "use": "sig"})
    jwk.ensure_kid()
    return pem, dict(jwk.as_dict(private=False))


def import_public_jwk(public_jwk: dict[str, Any]) -> RSAKey | ECKey:
    key = KeySet.import_key_set({"keys": [public_jwk]}).keys[0]
    if not isinstance(key, RSAKey | ECKey) or key.is_private:
        raise ValueError("public_jwk must be a public RSA or EC key")
    return key


def import_shared_secret(secret: str) -> OctKey:
    # Test secrets are often shorter than joserfc's 112-bit recommendation.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return OctKey.import_key(secret)


class SigningKey:
    """The RSA key the authorization server signs access tokens with."""

    alg = "RS256"

    def __init__(self) -> None:
        self.private = RSAKey.generate_key(
            2048, {"alg": self.alg, "use": "sig"}, private=True, auto_kid=True
        )
        self.public = RSAKey.import_key(self.private.as_dict(private=False))
        # A one-key set makes joserfc put the key's "kid" in every token header.
        self.signing_set = KeySet([self.private])

    @property
    def kid(self) -> str:
        return str(self.private.kid)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(self.public.as_dict(private=False))]}
