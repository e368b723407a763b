"""Public keys registered for partner clients that authenticate with ``private_key_jwt`` (RFC 7523 client
assertions), as PDND clients do.

A client registers a public JWK or a JWK Set (several keys let it roll its own key over). Only keys fit for the
assertion algorithms the gateway accepts are taken: EC P-256 (``ES256``), Ed25519 (``Ed25519``, or its older name
``EdDSA``), RSA of at least 2048 bits (``RS256``, ``PS256``). A symmetric key, a private key, a key of another
curve or a shorter RSA key is refused at registration, so ``none`` and the HMAC algorithms can never verify an
assertion. Every key gets a ``kid`` (its RFC 7638 thumbprint) when it has none.

The registered set is kept as canonical JSON text (:func:`registered_key_set`): that is what the store, the
clients file and :class:`gateway.auth.models.PartnerClient` hold.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey, import_key

__all__ = ["ASSERTION_ALGORITHMS", "MIN_RSA_BITS", "assertion_keys", "public_key_document", "registered_key_set"]

#: JWS algorithms a client assertion may be signed with; never ``none`` nor ``HS*``.
ASSERTION_ALGORITHMS: tuple[str, ...] = ("ES256", "Ed25519", "EdDSA", "RS256", "PS256")
#: Smallest RSA modulus accepted.
MIN_RSA_BITS = 2048
_MAX_KEYS = 5

_ALGORITHMS_OF = {"EC": ("ES256",), "OKP": ("Ed25519", "EdDSA"), "RSA": ("RS256", "PS256")}


def _checked(entry: object) -> dict[str, Any]:
    """The public JWK of one registered key, with a ``kid``; ``ValueError`` when the key is not acceptable."""
    if not isinstance(entry, Mapping):
        raise ValueError("a registered key must be a JWK object")
    if entry.get("kty") not in _ALGORITHMS_OF:
        raise ValueError("a registered key must be an EC P-256, Ed25519 or RSA public key")
    if any(name in entry for name in ("d", "p", "q", "dp", "dq", "qi", "k")):
        raise ValueError("register the public key only: this JWK holds private parameters")
    try:
        key = import_key(dict(entry))
    except (JoseError, ValueError, TypeError) as exc:
        raise ValueError(f"not a valid JWK: {exc}") from None
    if isinstance(key, ECKey) and key.curve_name != "P-256":
        raise ValueError("EC keys must be on the P-256 curve (ES256)")
    if isinstance(key, OKPKey) and key.curve_name != "Ed25519":
        raise ValueError("OKP keys must be Ed25519 keys")
    if isinstance(key, RSAKey) and key.public_key.key_size < MIN_RSA_BITS:
        raise ValueError(f"RSA keys must have at least {MIN_RSA_BITS} bits")
    alg = entry.get("alg")
    if alg is not None and alg not in _ALGORITHMS_OF[key.key_type]:
        raise ValueError(f"alg {alg!r} is not accepted for a {key.key_type} key")
    if entry.get("use", "sig") != "sig":
        raise ValueError("a registered key must be a signing key (use=sig)")
    key.ensure_kid()
    public = dict(key.as_dict(private=False))
    if alg is not None:
        public["alg"] = alg
    return public


def registered_key_set(document: Mapping[str, Any]) -> str:
    """The canonical JSON text of the JWK Set to register, from a JWK or a JWK Set; ``ValueError`` if any key
    is not acceptable (module docs) or the set is empty, too large or has two keys with one ``kid``."""
    entries = document.get("keys", [document]) if isinstance(document, Mapping) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError("expected a JWK or a JWK Set with at least one key")
    if len(entries) > _MAX_KEYS:
        raise ValueError(f"at most {_MAX_KEYS} keys per client")
    keys = [_checked(entry) for entry in entries]
    kids = [key["kid"] for key in keys]
    if len(set(kids)) != len(kids):
        raise ValueError("two registered keys have the same kid")
    return json.dumps({"keys": keys}, sort_keys=True, separators=(",", ":"))


def public_key_document(text: str) -> dict[str, Any]:
    """A public key file's content as a JWK or JWK Set: JSON as it is, or a PEM ``PUBLIC KEY`` (what a partner
    exports with ``openssl pkey -pubout``) as a JWK. ``ValueError`` for a private key or anything else."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            document = json.loads(stripped)
        except ValueError as exc:
            raise ValueError(f"not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise ValueError("expected a JWK or a JWK Set object")
        return document
    if "PRIVATE KEY" in stripped:
        raise ValueError("this is a private key: register the public key only (openssl pkey -pubout)")
    for key_type in ("EC", "OKP", "RSA"):
        try:
            key = import_key(stripped.encode("ascii"), key_type)
        except (JoseError, ValueError, TypeError, UnicodeEncodeError):
            continue
        return dict(key.as_dict(private=False))
    raise ValueError("expected a JWK, a JWK Set or a PEM public key")


def assertion_keys(registered: str) -> KeySet:
    """The keys that verify a client's assertions, from the text :func:`registered_key_set` produced."""
    return KeySet.import_key_set(json.loads(registered))
