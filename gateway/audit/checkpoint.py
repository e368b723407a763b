"""Signed checkpoints of the audit log, in the C2SP signed-note and tlog-checkpoint formats.

A checkpoint commits to the whole log at one size: the log's origin line, the number of records, and the
RFC 6962 root hash (c2sp.org/tlog-checkpoint). The gateway publishes it as a signed note
(c2sp.org/signed-note) with Ed25519 keys, so partners' privacy officers can keep checkpoints as witnesses and
check them with their own tooling (Go's golang.org/x/mod/sumdb/note reads the same notes and key strings).

Wire format::

    <origin>\\n<tree size>\\n<base64 root hash>\\n
    \\n
    \\u2014 <key name> <base64(4-byte key ID || 64-byte Ed25519 signature)>\\n   (one line per signature)

with key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]. A verifier key is shared as
``<name>+<hex key ID>+<base64(0x01 || public key)>`` and a signer key is stored as
``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || 32-byte seed)>``.

Key rotation: a note may carry signatures from several keys; signatures from keys the reader does not know
are ignored, a bad signature from a known key rejects the whole note, and at least one known key must have
signed. Pure functions over text and keys: no I/O, no clock, no settings.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.audit.merkle import HASH_SIZE, ProofError, verify_consistency

__all__ = [
    "MAX_SIGNATURES",
    "Checkpoint",
    "CheckpointError",
    "InconsistentCheckpointError",
    "KeyFormatError",
    "OpenedNote",
    "SigningKey",
    "VerifierKey",
    "key_id",
    "open_checkpoint",
    "open_note",
    "sign_checkpoint",
    "sign_note",
    "verify_checkpoint_consistency",
]

MAX_SIGNATURES = 100
"""Most signature lines accepted in one note (the limit Go's sumdb/note applies)."""

_ALG_ED25519 = 0x01
_ED25519_SIGNATURE_SIZE = 64
_ED25519_KEY_SIZE = 32
_SIGNATURE_PREFIX = "\u2014 "  # em dash, space
_PRIVATE_KEY_PREFIX = "PRIVATE+KEY+"
_KEY_ID_HEX = re.compile(r"[0-9a-fA-F]{8}")
_TREE_SIZE = re.compile(r"0|[1-9][0-9]*")
_FORBIDDEN_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_MAX_TREE_SIZE = 2**64 - 1


class CheckpointError(ValueError):
    """A signed note or checkpoint is malformed, not signed by a trusted key, or carries a bad signature."""


class InconsistentCheckpointError(CheckpointError):
    """Two checkpoints of one log are not proven consistent: a forked or rewritten log, or a bad proof.

    A witness holding both signed checkpoints has evidence that the log showed different histories.
    """


class KeyFormatError(ValueError):
    """A verifier or signer key string is malformed, of an unknown algorithm, or has a mismatched key ID."""


def key_id(name: str, public_key: bytes) -> bytes:
    """Return the 4-byte signed-note key ID of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([_ALG_ED25519]) + public_key).digest()[:4]


@dataclass(frozen=True, repr=False)
class VerifierKey:
    """A public Ed25519 key and the name its signatures carry; what a reader of checkpoints trusts."""

    name: str
    """Key name as it appears on signature lines, e.g. ``quartieri.example/audit``."""
    public_key: bytes
    """Raw 32-byte Ed25519 public key (RFC 8032 encoding)."""

    def __post_init__(self) -> None:
        _require_key_name(self.name, KeyFormatError)
        if len(self.public_key) != _ED25519_KEY_SIZE:
            raise KeyFormatError(f"Ed25519 public key is {len(self.public_key)} bytes, expected {_ED25519_KEY_SIZE}")

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID that prefixes this key's signatures."""
        return key_id(self.name, self.public_key)

    @classmethod
    def parse(cls, vkey: str) -> VerifierKey:
        """Parse a verifier key string ``<name>+<hex key ID>+<base64(0x01 || public key)>``."""
        name, hex_id, key_data = _split_key_text(vkey, "verifier key")
        if len(key_data) != 1 + _ED25519_KEY_SIZE:
            raise KeyFormatError(f"verifier key data is {len(key_data)} bytes, expected {1 + _ED25519_KEY_SIZE}")
        key = cls(name, key_data[1:])
        if key.key_id.hex() != hex_id.lower():
            raise KeyFormatError(f"verifier key ID {hex_id} does not match the key (expected {key.key_id.hex()})")
        return key

    def to_text(self) -> str:
        """Return the verifier key string ``<name>+<hex key ID>+<base64(0x01 || public key)>``."""
        encoded = base64.b64encode(bytes([_ALG_ED25519]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Return whether ``signature`` is this key's valid Ed25519 signature of ``message``."""
        if len(signature) != _ED25519_SIGNATURE_SIZE:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return f"VerifierKey({self.to_text()!r})"


class SigningKey:
    """An Ed25519 private key and the name it signs notes under (the log's checkpoint key)."""

    __slots__ = ("_name", "_private_key", "_verifier")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        _require_key_name(name, KeyFormatError)
        public = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self._name = name
        self._private_key = private_key
        self._verifier = VerifierKey(name, public)

    @classmethod
    def generate(cls, name: str) -> SigningKey:
        """Create a new random key for ``name``."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> SigningKey:
        """Build the key for ``name`` from a raw 32-byte Ed25519 seed (RFC 8032 private key)."""
        if len(seed) != _ED25519_KEY_SIZE:
            raise KeyFormatError(f"Ed25519 seed is {len(seed)} bytes, expected {_ED25519_KEY_SIZE}")
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def parse(cls, skey: str) -> SigningKey:
        """Parse a signer key string ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>``."""
        if not skey.startswith(_PRIVATE_KEY_PREFIX):
            raise KeyFormatError(f"signer key does not start with {_PRIVATE_KEY_PREFIX!r}")
        name, hex_id, key_data = _split_key_text(skey[len(_PRIVATE_KEY_PREFIX) :], "signer key")
        if len(key_data) != 1 + _ED25519_KEY_SIZE:
            raise KeyFormatError(f"signer key data is {len(key_data)} bytes, expected {1 + _ED25519_KEY_SIZE}")
        key = cls.from_seed(name, key_data[1:])
        if key.key_id.hex() != hex_id.lower():
            # Never echo the secret; the key ID is derived from the public half only.
            raise KeyFormatError(f"signer key ID {hex_id} does not match the key")
        return key

    def to_text(self) -> str:
        """Return the secret signer key string; store it like any other private key."""
        seed = self._private_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        encoded = base64.b64encode(bytes([_ALG_ED25519]) + seed).decode("ascii")
        return f"{_PRIVATE_KEY_PREFIX}{self._name}+{self.key_id.hex()}+{encoded}"

    @property
    def name(self) -> str:
        """Key name written on this key's signature lines."""
        return self._name

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID that prefixes this key's signatures."""
        return self._verifier.key_id

    @property
    def verifier(self) -> VerifierKey:
        """The public half, to hand to whoever verifies checkpoints."""
        return self._verifier

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of ``message``."""
        return self._private_key.sign(message)

    def __repr__(self) -> str:
        return f"SigningKey(name={self._name!r}, key_id={self.key_id.hex()})"


@dataclass(frozen=True)
class OpenedNote:
    """The text of a signed note whose signatures checked out, and the trusted keys that signed it."""

    text: str
    """Note text, including its final newline, excluding the blank line and signature lines."""
    verified_by: tuple[VerifierKey, ...]
    """Known keys with a valid signature on the text, in signature-line order; never empty."""


@dataclass(frozen=True)
class Checkpoint:
    """The log's state at one size: what a signed checkpoint commits to."""

    origin: str
    """Identity of the log that issued the checkpoint (first line), e.g. ``quartieri.example/audit``."""
    tree_size: int
    """Number of records (leaves) in the log."""
    root_hash: bytes
    """RFC 6962 Merkle tree hash of the first ``tree_size`` records (32 bytes)."""

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin or _FORBIDDEN_CONTROL.search(self.origin):
            raise CheckpointError("checkpoint origin must be a non-empty line without control characters")
        if isinstance(self.tree_size, bool) or not 0 <= self.tree_size <= _MAX_TREE_SIZE:
            raise CheckpointError(f"checkpoint tree size {self.tree_size!r} is not a uint64")
        if len(self.root_hash) != HASH_SIZE:
            raise CheckpointError(f"checkpoint root hash is {len(self.root_hash)} bytes, expected {HASH_SIZE}")

    def to_text(self) -> str:
        """Return the checkpoint body: origin, tree size and base64 root hash, each line ending in newline."""
        root = base64.b64encode(self.root_hash).decode("ascii")
        return f"{self.origin}\n{self.tree_size}\n{root}\n"

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        """Parse a checkpoint body. Extension lines are rejected: this log never writes them."""
        if not text.endswith("\n"):
            raise CheckpointError("checkpoint body must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) != 3:
            raise CheckpointError(f"checkpoint body has {len(lines)} lines, expected 3 (origin, tree size, root hash)")
        origin, size_text, root_text = lines
        if not _TREE_SIZE.fullmatch(size_text):
            raise CheckpointError("checkpoint tree size must be decimal digits without leading zeros")
        try:
            root = _strict_b64decode(root_text)
        except ValueError as exc:
            raise CheckpointError(f"checkpoint root hash is not canonical base64: {exc}") from exc
        return cls(origin, int(size_text), root)


def sign_note(text: str, key: SigningKey, *more_keys: SigningKey) -> str:
    """Return ``text`` as a signed note, with one signature line per key (in the order given)."""
    _check_note_text(text)
    keys = (key, *more_keys)
    if len({(k.name, k.key_id) for k in keys}) != len(keys):
        raise ValueError("the same key is given more than once")
    message = text.encode()
    lines = "".join(
        f"{_SIGNATURE_PREFIX}{k.name} {base64.b64encode(k.key_id + k.sign(message)).decode('ascii')}\n" for k in keys
    )
    return f"{text}\n{lines}"


def open_note(note: str | bytes, verifiers: Sequence[VerifierKey]) -> OpenedNote:
    """Parse a signed note and check its signatures against the trusted ``verifiers``.

    Signatures from unknown keys (name and key ID not both matching a verifier) are ignored. Raises
    :class:`CheckpointError` if the note is malformed, if any signature from a known key is invalid, or
    if no known key signed it.
    """
    text, signatures = _parse_note(note)
    trusted: dict[tuple[str, bytes], VerifierKey] = {}
    for verifier in verifiers:
        existing = trusted.setdefault((verifier.name, verifier.key_id), verifier)
        if existing != verifier:
            raise CheckpointError(f"two trusted keys share name and key ID {verifier.name}+{verifier.key_id.hex()}")

    message = text.encode()
    verified: list[VerifierKey] = []
    unknown: list[str] = []
    for name, signer_id, signature in signatures:
        verifier_key = trusted.get((name, signer_id))
        if verifier_key is None:
            unknown.append(f"{name}+{signer_id.hex()}")
            continue
        if not verifier_key.verify(message, signature):
            raise CheckpointError(f"invalid signature for key {name}+{signer_id.hex()}")
        if verifier_key not in verified:
            verified.append(verifier_key)
    if not verified:
        raise CheckpointError("note has no signature from a trusted key (signed by: " + ", ".join(unknown) + ")")
    return OpenedNote(text, tuple(verified))


def sign_checkpoint(checkpoint: Checkpoint, key: SigningKey, *more_keys: SigningKey) -> str:
    """Return the checkpoint as a signed note; pass the old and the new key during a key rotation."""
    return sign_note(checkpoint.to_text(), key, *more_keys)


def open_checkpoint(
    note_text: str | bytes, verifiers: Sequence[VerifierKey], *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint note against trusted keys and return the checkpoint it carries.

    When ``origin`` is given, a checkpoint from another log is rejected. Raises :class:`CheckpointError`
    if no trusted key signed it, if a trusted key's signature is bad, or if the note or body is malformed.
    """
    opened = open_note(note_text, verifiers)
    checkpoint = Checkpoint.from_text(opened.text)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"checkpoint is for log {checkpoint.origin!r}, expected {origin!r}")
    return checkpoint


def verify_checkpoint_consistency(old: Checkpoint, new: Checkpoint, proof: Sequence[bytes]) -> None:
    """Check that ``new`` extends ``old`` (same log, append-only) using an RFC 9162 consistency proof.

    Raises :class:`InconsistentCheckpointError` when the two cannot both be honest views of one
    append-only log: same size with different roots, a smaller new size, or a proof that does not verify.
    """
    if old.origin != new.origin:
        raise CheckpointError(f"checkpoints come from different logs: {old.origin!r} and {new.origin!r}")
    try:
        verify_consistency(old.tree_size, new.tree_size, old.root_hash, new.root_hash, proof)
    except ProofError as exc:
        raise InconsistentCheckpointError(
            f"checkpoints of {old.origin!r} at sizes {old.tree_size} and {new.tree_size} "
            f"are not consistent (forked or rewritten log?): {exc}"
        ) from exc


def _parse_note(note: str | bytes) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """Split a note into its text and (key name, key ID, signature) triples, checking only syntax."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CheckpointError("malformed note: not valid UTF-8") from exc
    if _FORBIDDEN_CONTROL.search(note):
        raise CheckpointError("malformed note: control characters other than newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise CheckpointError("malformed note: no blank line between text and signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise CheckpointError("malformed note: signature lines must end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointError(f"malformed note: more than {MAX_SIGNATURES} signatures")
    signatures: list[tuple[str, bytes, bytes]] = []
    for number, line in enumerate(lines, start=1):
        if not line.startswith(_SIGNATURE_PREFIX):
            raise CheckpointError(f"malformed note: signature line {number} does not start with an em dash")
        name, _, encoded = line[len(_SIGNATURE_PREFIX) :].partition(" ")
        if not _is_valid_key_name(name):
            raise CheckpointError(f"malformed note: bad key name on signature line {number}")
        try:
            raw = _strict_b64decode(encoded)
        except ValueError as exc:
            raise CheckpointError(f"malformed note: signature line {number} is not base64: {exc}") from exc
        if len(raw) < 5:
            raise CheckpointError(f"malformed note: signature line {number} is too short")
        signatures.append((name, raw[:4], raw[4:]))
    return text, signatures


def _check_note_text(text: str) -> None:
    if not text.endswith("\n"):
        raise ValueError("note text must end with a newline")
    if _FORBIDDEN_CONTROL.search(text):
        raise ValueError("note text must not contain control characters other than newline")


def _split_key_text(text: str, what: str) -> tuple[str, str, bytes]:
    """Split ``<name>+<hex key ID>+<base64 key data>`` and check the algorithm byte is Ed25519."""
    parts = text.split("+", 2)  # base64 may itself contain '+'
    if len(parts) != 3:
        raise KeyFormatError(f"{what} must be <name>+<hex key ID>+<base64 key>")
    name, hex_id, encoded = parts
    _require_key_name(name, KeyFormatError)
    if not _KEY_ID_HEX.fullmatch(hex_id):
        raise KeyFormatError(f"{what} ID must be 8 hex digits")
    try:
        key_data = _strict_b64decode(encoded)
    except ValueError as exc:
        raise KeyFormatError(f"{what} data is not canonical base64: {exc}") from exc
    if not key_data or key_data[0] != _ALG_ED25519:
        raise KeyFormatError(f"{what} uses an unsupported algorithm (only Ed25519, 0x01)")
    return name, hex_id, key_data


def _strict_b64decode(text: str) -> bytes:
    """Decode standard padded base64, rejecting stray characters and non-canonical encodings."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise ValueError("invalid base64") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise ValueError("non-canonical base64")
    return raw


def _is_valid_key_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(c.isspace() or c < " " for c in name)


def _require_key_name(name: str, error: type[ValueError]) -> None:
    if not _is_valid_key_name(name):
        raise error(f"key name {name!r} must be non-empty, without spaces, '+' or control characters")
