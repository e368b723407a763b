"""Signing keys for partner access tokens.

A key file may hold the signing key and the keys it replaced (:class:`TokenKeys`, :func:`rotated`): those stay
published and accepted until the tokens they signed have expired, so a rotation costs no refused token.

Tokens are signed with Ed25519 (JWS algorithm ``Ed25519``, RFC 9864) or,
alternatively, ECDSA P-256 (``ES256``). The older ``EdDSA`` algorithm name
is not used: joserfc flags it as deprecated by RFC 9864.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

from joserfc.jwk import ECKey, KeySet, OKPKey, import_key

__all__ = [
    "SUPPORTED_ALGORITHMS",
    "SigningKey",
    "TokenKeys",
    "algorithm_for_key",
    "generate_signing_key",
    "load_verification_keys",
    "public_key_set",
    "read_token_keys",
    "rotated",
    "token_keys_text",
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


def public_key_set(key: SigningKey, *others: SigningKey) -> dict[str, Any]:
    """Return the public JWK set (RFC 7517) for verifying tokens signed by ``key`` (and ``others``)."""
    published = []
    for each in (key, *others):
        each.ensure_kid()
        public = dict(each.as_dict(private=False))
        public["use"] = "sig"
        public["alg"] = algorithm_for_key(each)
        published.append(public)
    return {"keys": published}


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


# --- rotation (issue 10 point 14) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenKeys:
    """The token-signing key file's content: the key that signs, and the keys that signed before it, each with
    when it stopped, kept (published in the JWKS, accepted by the validator) until its tokens have expired."""

    signing: SigningKey
    retired: tuple[tuple[SigningKey, datetime], ...] = ()

    def verification_keys(self) -> list[SigningKey]:
        return [self.signing, *(key for key, _ in self.retired)]


def read_token_keys(text: str) -> TokenKeys:
    """A key file holding one private JWK, or ``{"keys": [signing, retired...], "retired_at": {kid: iso}}``."""
    document = json.loads(text)
    entries = document.get("keys", [document])
    keys = [copy_private_key(import_key(entry)) for entry in entries]  # type: ignore[arg-type]
    retired_at = document.get("retired_at", {})
    now = datetime.now(UTC)
    retired = tuple((key, datetime.fromisoformat(retired_at[key.kid]) if key.kid in retired_at else now)
                    for key in keys[1:])
    return TokenKeys(keys[0], retired)


def token_keys_text(keys: TokenKeys) -> str:
    """The key file's text for ``keys`` (private keys: write it ``0600``)."""
    return json.dumps({
        "keys": [dict(k.as_dict(private=True)) for k in keys.verification_keys()],
        "retired_at": {key.kid: at.isoformat() for key, at in keys.retired},
    }, indent=2)


def rotated(keys: TokenKeys, now: datetime, token_ttl_seconds: int) -> TokenKeys:
    """A new signing key; the current one retired now; retired keys whose tokens have all expired dropped."""
    keep = [(key, at) for key, at in keys.retired if (now - at).total_seconds() <= token_ttl_seconds + 60]
    return TokenKeys(generate_signing_key(), ((keys.signing, now), *keep))
