"""Signing keys for partner access tokens.

Tokens are signed with Ed25519 (JWS algorithm ``Ed25519``, RFC 9864) or,
alternatively, ECDSA P-256 (``ES256``). The older ``EdDSA`` algorithm name
is not used: joserfc flags it as deprecated by RFC 9864.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from joserfc.jwk import ECKey, KeySet, OKPKey, import_key

__all__ = [
    "SUPPORTED_ALGORITHMS",
    "SigningKey",
    "algorithm_for_key",
    "generate_signing_key",
    "load_verification_keys",
    "public_key_set",
]

SigningKey: TypeAlias = OKPKey | ECKey

#: JWS algorithms accepted for access tokens; everything else ("none",
#: HMAC, RSA) is rejected by the validator.
SUPPORTED_ALGORITHMS: tuple[str, ...] = ("Ed25519", "ES256")


def algorithm_for_key(key: SigningKey) -> str:
    """Return the JWS algorithm matching ``key``, or raise ``ValueError``."""
    if isinstance(key, OKPKey) and key.curve_name == "Ed25519":
        return "Ed25519"
    if isinstance(key, ECKey) and key.curve_name == "P-256":
        return "ES256"
    raise ValueError("signing key must be an Ed25519 OKP key or a P-256 EC key")


def generate_signing_key() -> OKPKey:
    """Create a new private Ed25519 signing key with a thumbprint ``kid``."""
    key = OKPKey.generate_key("Ed25519", private=True)
    key.ensure_kid()
    return key


def copy_private_key(key: SigningKey) -> SigningKey:
    """Return a private copy of ``key`` that has a ``kid``, checking its type."""
    algorithm_for_key(key)
    if not key.is_private:
        raise ValueError("signing key must contain the private part")
    copied = import_key(dict(key.as_dict(private=True)))
    if not isinstance(copied, (OKPKey, ECKey)):  # pragma: no cover - defensive
        raise ValueError("unsupported signing key")
    copied.ensure_kid()
    return copied


def public_key_set(key: SigningKey) -> dict[str, Any]:
    """Return the public JWK set (RFC 7517) for verifying tokens signed by ``key``."""
    key.ensure_kid()
    public = dict(key.as_dict(private=False))
    public["use"] = "sig"
    public["alg"] = algorithm_for_key(key)
    return {"keys": [public]}


def load_verification_keys(keys: KeySet | SigningKey | dict[str, Any]) -> KeySet:
    """Turn a JWK set, a single JWK dict or a key object into a :class:`KeySet`."""
    if isinstance(keys, KeySet):
        return keys
    if isinstance(keys, (OKPKey, ECKey)):
        return KeySet([keys])
    if isinstance(keys, dict):
        if "keys" in keys:
            return KeySet.import_key_set(keys)  # type: ignore[arg-type]
        key = import_key(keys)
        return KeySet([key])
    raise TypeError("public keys must be a JWK set, a JWK dict or a joserfc key")
