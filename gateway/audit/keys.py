"""Files of checkpoint signing keys (private) and of verifier keys (public), one C2SP key string a line.

Signing key file: ``PRIVATE+KEY+<name>+<hex id>+<base64>`` lines. The first key is the log's current key and
signs every checkpoint; any further keys co-sign during a key rotation, so that witnesses who know only the
previous key can follow the log while they add the new one. The file is written atomically with mode 0600.

Verifier key file: ``<name>+<hex id>+<base64>`` lines, what ``GET /v1/audit/keys`` serves and what
``gateway audit verify --keys FILE`` reads. Blank lines and lines starting with ``#`` are ignored in both.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from gateway.audit.checkpoint import KeyFormatError, SigningKey, VerifierKey

__all__ = ["ensure_signing_key_file", "read_signing_keys", "read_verifier_keys", "write_signing_keys"]


def _key_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def read_signing_keys(path: Path) -> list[SigningKey]:
    """The signer keys in ``path``, current key first; raises ``KeyFormatError`` if none or one is malformed."""
    lines = _key_lines(path.read_text(encoding="utf-8"))
    if not lines:
        raise KeyFormatError(f"{path} holds no audit signing key")
    keys: list[SigningKey] = []
    for number, line in enumerate(lines, start=1):
        try:
            keys.append(SigningKey.parse(line))
        except KeyFormatError as exc:  # the message never echoes the secret
            raise KeyFormatError(f"{path}, key {number}: {exc}") from None
    if len({(k.name, k.key_id) for k in keys}) != len(keys):
        raise KeyFormatError(f"{path} lists the same key more than once")
    return keys


def write_signing_keys(path: Path, keys: Sequence[SigningKey]) -> None:
    """Replace ``path`` atomically with ``keys`` (current key first), readable by the owner only."""
    if not keys:
        raise ValueError("at least one signing key is needed")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{k.to_text()}\n" for k in keys)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def ensure_signing_key_file(path: Path, name: str) -> None:
    """Create ``path`` with one new key named ``name`` unless it exists (demo mode)."""
    if not path.exists():
        write_signing_keys(path, [SigningKey.generate(name)])


def read_verifier_keys(path: Path) -> list[VerifierKey]:
    """The verifier keys in ``path``; raises ``KeyFormatError`` naming the first malformed line."""
    keys: list[VerifierKey] = []
    for number, line in enumerate(_key_lines(path.read_text(encoding="utf-8")), start=1):
        try:
            keys.append(VerifierKey.parse(line))
        except KeyFormatError as exc:
            raise KeyFormatError(f"{path}, key {number}: {exc}") from None
    return keys
