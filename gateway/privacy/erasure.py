"""Erasure of a person (GDPR art. 17) by crypto-shredding, always audited.

The subject's key is destroyed, so their audit references resolve to no one while the log still verifies; their
lookup hash is replaced, so their identifier no longer leads to them; the payloads of the messages about them are
emptied, and those not yet delivered are dropped. One ``erasure`` audit record says that it happened, by whom and
how much was removed, and names no subject. An identifier the gateway cannot link to anyone gets the answer
``no-subject``: after an erasure the identifier leads nowhere, so "never seen" and "already erased" are the same
state, and the officer is told that nothing linkable is held (an ``erasure`` record with outcome ``failure`` and
reason ``no-subject`` is written all the same).

Erasure takes two officers (:func:`request_erasure`, then :func:`approve_erasure` by another one within a
window); the request is an audit record carrying the person's keyed reference and changes nothing else. There is
no single-step erasure: the API, the console and the operator's command all take these two steps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from gateway.audit.record import subject_ref
from gateway.pipeline import ledger
from gateway.privacy.officer import Question, aware, person_identifier
from schemas.errors import FieldProblem

if TYPE_CHECKING:
    from gateway.store import Store, StoreTransaction
    from gateway.store.models import Subject

__all__ = ["ErasureRequest", "ErasureResult", "approve_erasure", "request_erasure"]


@dataclass(frozen=True, slots=True)
class ErasureResult:
    """What an erasure request did."""

    outcome: Literal["erased", "no-subject"]
    audit_index: int
    """Log index of the ``erasure`` audit record."""
    payloads_purged: int = 0
    undelivered_dropped: int = 0


@dataclass(frozen=True, slots=True)
class ErasureRequest:
    """A pending erasure: nothing is changed until a different officer approves it before ``expires_at``."""

    request_index: int
    """Log index of the ``request-erasure`` audit record; the approval names it."""
    expires_at: datetime


async def request_erasure(store: Store, identifier: str, question: Question, window: timedelta) -> ErasureRequest:
    """First step of an erasure: record the request (audited, with the person's keyed reference) and change
    nothing else. A different officer approves it with :func:`approve_erasure` within ``window``."""
    system, value = person_identifier(identifier)
    officer = question.officer
    async with store.transaction() as tx:
        subject = await tx.subject(system, value, create=False)
        ref = subject_ref(subject.subject_key) if subject and subject.subject_key else None
        [entry] = await tx.append_audit([ledger.erasure_request_record(
            officer.client_id, officer.token_id, officer.organisation, question.instance_id, question.request_id,
            question.at, ref)])
    return ErasureRequest(entry.index, question.at + window)


async def approve_erasure(store: Store, request_index: int, identifier: str, question: Question,
                          window: timedelta) -> ErasureResult:
    """Second step: a different officer names the request and the same person again; the erasure happens only if
    the request exists, is younger than ``window``, was made by someone else, and the identifier leads to the
    person it was made for (so a request is spent once the person is erased)."""
    from gateway.errors import Conflict, NotFound, SameOfficer

    system, value = person_identifier(identifier)
    async with store.transaction() as tx:
        entry = await tx.audit_entry(request_index)
        request = json.loads(entry["record"]) if entry is not None else {}
        if (request.get("event_type"), request.get("action")) != ("erasure", "request-erasure"):
            raise NotFound(f"no erasure request at audit record {request_index}")
        if request.get("client_id") == question.officer.client_id:
            raise SameOfficer("the officer who requested an erasure cannot approve it; another officer must")
        if question.at - aware(datetime.fromisoformat(request["occurred_at"])) > window:
            raise Conflict("the erasure request has lapsed; request the erasure again")
        subject = await tx.subject(system, value, create=False)
        ref = subject_ref(subject.subject_key) if subject and subject.subject_key else None
        if ref != request.get("subject_ref"):
            raise Conflict("the identifier does not lead to the person of the erasure request (another person, "
                           "or the request was carried out already)",
                           [FieldProblem("/identifier", "mismatch", "give the identifier the request was for")])
        return await _shred(tx, subject, question, approves=request_index)


async def _shred(tx: StoreTransaction, subject: Subject | None, question: Question,
                 approves: int | None = None) -> ErasureResult:
    """Crypto-shred ``subject`` (None: no one is linked to the identifier) and append the ``erasure`` record."""
    counts: dict[str, int] | None = None
    if subject is not None:
        purged, dropped = await tx.purge_subject_payloads(subject.pseudonym)
        await tx.erase_subject(subject.pseudonym)
        counts = {"outbox-payloads": purged, "undelivered-dropped": dropped}
    officer = question.officer
    [entry] = await tx.append_audit([ledger.erasure_record(
        subject is not None, counts, officer.client_id, officer.token_id, officer.organisation, question.instance_id,
        question.request_id, question.at, approves=approves)])
    if counts is None:
        return ErasureResult("no-subject", entry.index)
    return ErasureResult("erased", entry.index, counts["outbox-payloads"], counts["undelivered-dropped"])
