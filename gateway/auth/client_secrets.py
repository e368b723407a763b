"""Hashing and constant-time verification of partner client secrets.

Secrets are stored only as scrypt hashes in the text format
``scrypt$N$r$p$salt_b64$hash_b64`` (unpadded URL-safe base64), so a
leaked client registry does not reveal usable credentials.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

__all__ = ["hash_client_secret", "is_client_secret_hash", "verify_client_secret"]

_SCHEME = "scrypt"
_DEFAULT_N = 2**14
_DEFAULT_R = 8
_DEFAULT_P = 1
_SALT_BYTES = 16
_HASH_BYTES = 32
# Upper bounds keep a malformed or hostile stored hash from exhausting memory or CPU.
_MAX_N = 2**20
_MAX_R = 32
_MAX_P = 16


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii"))


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(
        secret.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        dklen=length,
        maxmem=256 * n * r + 2**20,
    )


def _parse(secret_hash: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = secret_hash.split("$")
    if len(parts) != 6 or parts[0] != _SCHEME:
        return None
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = _b64decode(parts[4])
        digest = _b64decode(parts[5])
    except (ValueError, binascii.Error):
        return None
    if not (1 < n <= _MAX_N and n & (n - 1) == 0):
        return None
    if not (0 < r <= _MAX_R and 0 < p <= _MAX_P):
        return None
    if len(salt) < 8 or len(digest) < 16:
        return None
    return n, r, p, salt, digest


def hash_client_secret(secret: str) -> str:
    """Hash ``secret`` with scrypt and a random salt, for storage in configuration."""
    if not secret:
        raise ValueError("client secret must not be empty")
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(secret, salt, _DEFAULT_N, _DEFAULT_R, _DEFAULT_P, _HASH_BYTES)
    return "$".join(
        [
            _SCHEME,
            str(_DEFAULT_N),
            str(_DEFAULT_R),
            str(_DEFAULT_P),
            _b64encode(salt),
            _b64encode(digest),
        ]
    )


def is_client_secret_hash(value: str) -> bool:
    """Tell whether ``value`` is a well-formed hash produced by :func:`hash_client_secret`."""
    return _parse(value) is not None


def verify_client_secret(secret: str, secret_hash: str) -> bool:
    """Check ``secret`` against ``secret_hash`` in constant time.

    Returns ``False`` for a wrong secret and for a malformed hash.
    """
    parsed = _parse(secret_hash)
    if parsed is None:
        return False
    n, r, p, salt, expected = parsed
    actual = _scrypt(secret, salt, n, r, p, len(expected))
    return hmac.compare_digest(actual, expected)
