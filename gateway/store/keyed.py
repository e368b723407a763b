"""The keyed hashes the store looks people and care records up by, under the gateway's pseudonym key.

Shared by the SQL store (:class:`gateway.store.store.Store`) and the in-memory one
(:class:`gateway.store.memory.MemoryStore`), so that both find the same person under the same key: neither
ever stores an identifier itself, only these hashes.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["activity_source_key", "lookup_hash"]


def lookup_hash(pseudonym_key: bytes, system: str, value: str) -> str:
    """Keyed hash under which a person's identifier (``system``, ``value``) is looked up."""
    return hmac.new(pseudonym_key, f"{system}:{value}".encode(), hashlib.sha256).hexdigest()


def activity_source_key(pseudonym_key: bytes, source: str, resource_type: str, resource_id: str) -> str:
    """Keyed hash that recognises a counted care record sent again (F6), under a key derived from the
    pseudonym key for this use only."""
    key = hashlib.sha256(b"statistics-source/v1\x00" + pseudonym_key).digest()
    message = f"{source}\x00{resource_type}\x00{resource_id}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()
