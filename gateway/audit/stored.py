"""What the store keeps about signed checkpoints and the public halves of the checkpoint signing keys.

Plain values, free of SQL, so that the store, the checkpointer, the verifier and the HTTP routes share them.
The private halves of signing keys never reach the database: they live in the file named by
``GATEWAY_AUDIT_SIGNING_KEY_FILE`` (see :mod:`gateway.audit.keys`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.audit.checkpoint import VerifierKey

__all__ = ["StoredCheckpoint", "StoredSigningKey"]


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """One signed checkpoint as stored: the note exactly as published, plus indexed copies of its body."""

    id: int
    """Position in signing order (checkpoint sizes never decrease with it)."""
    tree_size: int
    """Number of audit records the checkpoint commits to."""
    root_hash: bytes
    """RFC 6962 root of the first ``tree_size`` records (a copy of the note's third line, for queries)."""
    note: str
    """The C2SP signed note: origin, tree size, base64 root, blank line, one signature line per key."""
    signed_at: datetime
    key_name: str
    """Name of the key that signed first (the log's current key when the checkpoint was made)."""
    key_id: str
    """Hex signed-note key ID of that key."""


@dataclass(frozen=True, slots=True)
class StoredSigningKey:
    """The public half of a checkpoint signing key, with when it started and stopped signing."""

    key_name: str
    key_id: str
    """Hex signed-note key ID (8 digits)."""
    public_key: bytes
    """Raw 32-byte Ed25519 public key."""
    created_at: datetime
    retired_at: datetime | None
    """When the key stopped signing; None while it still signs. Retired keys keep verifying old checkpoints."""

    @property
    def verifier(self) -> VerifierKey:
        """The key as a checkpoint reader trusts it."""
        return VerifierKey(self.key_name, self.public_key)

    def to_vkey(self) -> str:
        """The C2SP verifier key string ``<name>+<hex key ID>+<base64(0x01 || public key)>``."""
        return self.verifier.to_text()
