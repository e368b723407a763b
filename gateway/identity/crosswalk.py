"""The crosswalk: which identifiers each recipient may see, and the opaque tokens that stand for the rest.

A recipient that is not entitled to another partner's identifier (ALER never sees a raw Comune case id) gets
a gateway token instead: a keyed hash of (recipient, identifier system, value), so the same case always has
the same token for ALER — ALER can follow it over time — while another recipient gets a different token,
and nobody can turn a token back into the case id without the gateway's key.

A partner may quote a token back (identifier system ``gateway-token``): every token the gateway mints is
recorded, in the intake transaction that discloses it, as token -> (the recipient it was minted for, the
identifier system, the subject's pseudonym, and the identifier value sealed with AES-GCM under a key derived
from the gateway's key, so the database alone never shows a partner's identifier). A quoted token resolves
only for the partner it was minted for; any other token — unknown, or minted for someone else — is refused
with the same problem, so a partner learns nothing about tokens that are not its own. The original
identifier comes back on the canonical envelope, and :data:`OWNERS` keeps it to its owner (the Comune gets
its own case id back; no one else does).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.errors import ContractViolation, FieldProblem
from schemas.envelope import Identifier, SubjectRef

if TYPE_CHECKING:
    from gateway.store.models import Subject

__all__ = [
    "IDENTIFIER_OF_PATH",
    "OWNERS",
    "SUBJECT_SYSTEM",
    "TOKEN_SYSTEM",
    "Crosswalk",
    "MintedToken",
    "TokenLookup",
    "recording",
    "restore_quoted",
    "seal",
    "subject_of_quoted_token",
    "unseal",
]

TOKEN_SYSTEM: Final = "gateway-token"  # noqa: S105 - an identifier system name, not a secret
"""Identifier system of a token quoted back by a partner (and of the subject token a recipient receives)."""

SUBJECT_SYSTEM: Final = "subject"
"""The system a subject token is minted under (``subject.token`` in a flow): its value is the pseudonym."""

IDENTIFIER_OF_PATH: Final[dict[str, str]] = {"case_id": "comune-case"}
"""Payload paths a flow tokenises (``<path> as token``) that hold a partner's identifier of the person, and its
canonical identifier system: quoting the token gives that identifier back to its owner."""

OWNERS: Final[dict[str, str]] = {
    "aler-contract": "aler",
    "asst-patient": "asst",
    "comune-case": "comune",
    "fwa-referral": "fwa",
}
"""Partner identifier systems and the organisation that issues them: such an identifier crosses only from or
to its owner, whatever a flow lists (ASST never gets ALER ids, ALER never a Comune case id)."""

Tokeniser = Callable[[str, str, str], str]


class Crosswalk:
    """Mints per-recipient opaque tokens under the gateway's key."""

    def __init__(self, key: bytes) -> None:
        self._keyed = hmac.new(hashlib.sha256(b"crosswalk/v1\x00" + key).digest(), digestmod=hashlib.sha256)
        """HMAC-SHA-256 under the crosswalk key with no message yet: each token copies it (the key's inner and
        outer pads hashed once, not per token; several tokens and record keys per message)."""

    def token(self, recipient: str, system: str, value: str) -> str:
        """The token ``recipient`` sees for identifier ``value`` of ``system`` (e.g. a Comune case id)."""
        mac = self._keyed.copy()
        mac.update(f"{recipient}\x00{system}\x00{value}".encode())
        return "gwt_" + base64.b32encode(mac.digest()[:15]).decode("ascii").lower()


@dataclass(frozen=True, slots=True)
class MintedToken:
    """A token minted for one recipient, as the store records it."""

    token: str
    recipient: str
    system: str
    """``subject`` for a subject token, a canonical identifier system (``comune-case``) for a tokenised
    partner identifier, else the tokenised payload path (``encounter_id``)."""
    value: str | None
    """The identifier the token stands for; None for a subject token (the pseudonym says it all)."""
    subject_pseudonym: str


def recording(tokenise: Tokeniser, subject_pseudonym: str, into: list[MintedToken]) -> Tokeniser:
    """``tokenise``, also appending each token it mints about ``subject_pseudonym`` to ``into``."""

    def record(recipient: str, system: str, value: str) -> str:
        token = tokenise(recipient, system, value)
        if system == SUBJECT_SYSTEM:
            into.append(MintedToken(token, recipient, SUBJECT_SYSTEM, None, subject_pseudonym))
        else:
            into.append(MintedToken(token, recipient, IDENTIFIER_OF_PATH.get(system, system), value,
                                    subject_pseudonym))
        return token

    return record


def _seal_key(key: bytes) -> bytes:
    return hashlib.sha256(b"crosswalk-seal/v1\x00" + key).digest()


def seal(key: bytes, token: str, value: str) -> bytes:
    """``value`` encrypted (AES-256-GCM, random nonce, the token as associated data) under a key derived from
    the gateway's ``key``: a sealed value read back under another token does not open."""
    nonce = os.urandom(12)
    return nonce + AESGCM(_seal_key(key)).encrypt(nonce, value.encode(), token.encode())


def unseal(key: bytes, token: str, sealed: bytes) -> str | None:
    """The value :func:`seal` sealed for ``token``; None if it does not open (wrong key or token)."""
    try:
        return AESGCM(_seal_key(key)).decrypt(sealed[:12], sealed[12:], token.encode()).decode()
    except (InvalidTag, ValueError):
        return None


class TokenLookup(Protocol):
    """What resolving a quoted token needs from the store (:class:`gateway.store.StoreTransaction` is one)."""

    async def subject_of_token(self, token: str, quoted_by: str) -> Subject | None: ...

    async def token_identifier(self, token: str, quoted_by: str) -> tuple[str, str] | None: ...


def _refused(subject: SubjectRef) -> ContractViolation:
    index = next(i for i, identifier in enumerate(subject.identifiers) if identifier.system == TOKEN_SYSTEM)
    return ContractViolation(
        "the message quotes a gateway token that does not identify anyone for the sender",
        [FieldProblem(f"/subject/identifiers/{index}/value", "unknown-token",
                      "quote only a gateway token (gwt_...) the gateway sent to your organisation")],
    )


async def subject_of_quoted_token(tx: TokenLookup, subject: SubjectRef, quoted_by: str) -> Subject | None:
    """The person a ``gateway-token`` identifier of ``subject`` stands for; None when no token is quoted.

    Raises :class:`~gateway.errors.ContractViolation` (rule ``unknown-token``) when the token is unknown or
    was minted for another partner: the same problem either way, so it never tells whether a token exists.
    """
    token = subject.first(TOKEN_SYSTEM)
    if token is None:
        return None
    found = await tx.subject_of_token(token, quoted_by)
    if found is None:
        raise _refused(subject)
    return found


async def restore_quoted(tx: TokenLookup, subject: SubjectRef, quoted_by: str,
                         person: Subject | None = None) -> SubjectRef:
    """``subject`` with a quoted token replaced by the identifier it stands for (a Comune case id), which
    minimisation passes on only to its owner, or simply dropped when it stands for the person; unchanged when
    no token is quoted. Raises like :func:`subject_of_quoted_token` for a token that is not the sender's, or
    that stands for someone other than ``person`` (the one the message's other identifiers name)."""
    token = subject.first(TOKEN_SYSTEM)
    if token is None:
        return subject
    holder = await tx.subject_of_token(token, quoted_by)
    if holder is None or (person is not None and holder.pseudonym != person.pseudonym):
        raise _refused(subject)
    kept = [i for i in subject.identifiers if i.system != TOKEN_SYSTEM]
    restored = await tx.token_identifier(token, quoted_by)
    if restored is not None and restored[0] in OWNERS:
        system, value = restored
        kept.append(Identifier.model_validate({"system": system, "value": value}))
    if not kept:  # a token for the person only: the pseudonym identifies them from here on
        return subject
    return SubjectRef(identifiers=tuple(dict.fromkeys(kept)), pseudonym=subject.pseudonym)
