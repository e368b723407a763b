"""The ledger: the one place that turns what the gateway decided and did into what it records and sends.

Every audit record (privacy.md "Audit record": decisions, disclosures, drops at delivery, consent changes,
privacy-officer queries, erasures, retention runs, published aggregates) and every outbox row (outgoing
messages, statuses, consent events, restriction notices) is built here, with the Kafka headers they carry, so
that what a record holds and what a message names are decided in one module. Pure functions: no I/O; the
callers write what they get back in their own transaction.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Literal

import orjson

from gateway.audit.record import AuditRecord, KafkaCoordinates, subject_ref, trusted_record
from gateway.pipeline.status import status_message
from gateway.policy import Decision
from gateway.policy.consent import ConsentRecord
from gateway.policy.registry import Flow
from gateway.settings import TopicSettings
from gateway.store.models import MessageStatus, OutboxRow, Subject
from schemas.envelope import Envelope

if TYPE_CHECKING:
    from gateway.pipeline.intake import Submission

__all__ = [
    "aggregate_publication_record",
    "aggregate_row",
    "audit_labels",
    "consent_change_record",
    "consent_withdrawn_event",
    "console_session_record",
    "dead_letter_replay_record",
    "decision_record",
    "drop_record",
    "erasure_record",
    "erasure_request_record",
    "headers",
    "message_labels",
    "notice_acknowledged_record",
    "outgoing_message",
    "privacy_query_record",
    "record_key",
    "restriction_notices",
    "retention_record",
    "status_row",
    "subject_audit_ref",
    "token_issued_record",
]

RecordKeys = Callable[[str, str, str], str]
"""The crosswalk's keyed token function ``(recipient, system, value) -> token``."""


def _ref(key: bytes | None) -> str | None:
    return subject_ref(key) if key else None


def subject_audit_ref(subject: Subject) -> str | None:
    """The reference under which the audit log names ``subject`` (:func:`gateway.audit.record.subject_ref`, a
    keyed hash); None once the subject was erased. Computed once per message and given to each of its records."""
    return _ref(subject.subject_key)


# --- headers and keys --------------------------------------------------------------------------------------


def headers(message_id: str, correlation_id: str, request_id: str, message_type: str, schema_version: str,
            purpose: str | None) -> tuple[tuple[str, str], ...]:
    """The Kafka headers of an outgoing message (architecture.md "Kafka conventions")."""
    found = [
        ("message-id", message_id), ("correlation-id", correlation_id), ("request-id", request_id),
        ("message-type", message_type), ("schema-version", schema_version),
    ]
    if purpose:
        found.append(("purpose", purpose))
    return tuple(found)


def record_key(tokenise: RecordKeys | None, recipient: str, pseudonym: str) -> bytes:
    """The Kafka key of what ``recipient`` receives about a person: the same for all of it, so that one
    person's messages stay in order, but a different one for each recipient, so that two partners cannot
    match their records on it (the internal pseudonym would be one identifier shared by all of them)."""
    if tokenise is None:
        return hashlib.sha256(f"record-key/v1\x00{recipient}\x00{pseudonym}".encode()).hexdigest()[:32].encode()
    return tokenise(recipient, "record-key", pseudonym).encode()


# --- a partner message: decisions, disclosures, statuses ----------------------------------------------------


def message_labels(envelope: Envelope) -> frozenset[str]:
    """Envelope sensitivity plus the payload's own security labels (FHIR meta.security)."""
    payload_labels = envelope.payload.get("security_labels") or ()
    return frozenset(envelope.sensitivity) | {str(label) for label in payload_labels}


def audit_labels(flow: Flow | None, envelope: Envelope) -> tuple[str, ...]:
    """Labels recorded with a decision; an emergency flow's decisions carry EMERGENCY so they reach the
    privacy officers' review queue (rule 11)."""
    if flow is None:
        return tuple(sorted(message_labels(envelope)))
    return (flow.sensitivity, "EMERGENCY") if flow.emergency_override else (flow.sensitivity,)


def decision_record(envelope: Envelope, submission: Submission, subject_ref: str | None, decision: Decision,
                    instance: str, *, disclosed_as: str | None = None, redacted: Sequence[str] = ()) -> AuditRecord:
    """The record of one decision about one recipient or, with ``disclosed_as`` (the outgoing message id), of
    the disclosure it led to; ``subject_ref``: the subject's audit reference (:func:`subject_audit_ref`);
    ``redacted``: sensitive labels whose elements the disclosure lost, recorded as ``REDACTED:<label>``.
    Rule 16: decision id, consent version, policy revision, combining rule, provision."""
    flow = decision.flow
    disclosure = disclosed_as is not None
    # Two per referral, every value from the validated envelope, the submission and the gateway's own decision:
    # built without validating again (trusted_record says why that is safe).
    return trusted_record(
        event_type="disclosure" if disclosure else "decision",
        action="forward" if decision.permitted else "deny",
        occurred_at=envelope.occurred_at,
        outcome=decision.outcome,
        reason=decision.reason,
        purpose=envelope.purpose,
        legal_basis=decision.legal_basis,
        flow_id=flow.id if flow else None,
        decision_id=decision.decision_id,
        consent_ref=decision.consent_ref,
        policy_revision=decision.policy_revision,
        combining_rule=decision.combining_rule,
        matched_provision=decision.matched_provision,
        client_id=submission.client_id,
        token_id=submission.token_id,
        requesting_org=submission.sender,
        instance=instance,
        source_org=envelope.sender,
        recipient_org=decision.recipient or None,
        subject_ref=subject_ref,
        message_ids=(envelope.message_id, disclosed_as) if disclosed_as else (envelope.message_id,),
        correlation_id=envelope.correlation_id,
        request_id=submission.request_id,
        trace_id=submission.trace_id,
        kafka=submission.kafka,
        data_categories=flow.allowed_fields if disclosure and flow else (),
        labels=(*audit_labels(flow, envelope), *(f"REDACTED:{label}" for label in redacted)),
        obligations=(*decision.obligations, *decision.refrains) if disclosure and flow else (),
        alert=True if flow and flow.emergency_override and not disclosure else None,
    )


def status_row(status: MessageStatus, key: bytes, topics: TopicSettings, now: datetime,
               suffix: str = "") -> OutboxRow:
    """The sender's status message (``status.<sender>``): forwarded or denied with a reason class, or a step
    of the referral's lifecycle (``suffix``: ``-accepted`` and so on)."""
    message_id = f"status-{status.message_id}{suffix}"
    return OutboxRow(
        topic=topics.name("status", status.sender), recipient=status.sender, message_id=message_id,
        value=status_message(status), key=key,
        headers=headers(message_id, status.correlation_id, status.request_id or "", "referral.status", "1.0", None),
        created_at=now,
    )


def outgoing_message(topic: str, recipient: str, message_id: str, value: bytes, key: bytes,
                     message_headers: tuple[tuple[str, str], ...], now: datetime, consent_ref: str | None,
                     subject_pseudonym: str) -> OutboxRow:
    """A minimised, encoded message for a recipient, with the consent it crossed under (the relay re-checks
    it at delivery, rule 9)."""
    consent_id, consent_version = _split_ref(consent_ref)
    return OutboxRow(topic=topic, recipient=recipient, message_id=message_id, value=value, key=key,
                     headers=message_headers, created_at=now, consent_id=consent_id,
                     consent_version=consent_version, subject_pseudonym=subject_pseudonym)


def _split_ref(ref: str | None) -> tuple[str | None, int | None]:
    if ref is None:
        return None, None
    consent_id, _, version = ref.rpartition("@")
    return consent_id, int(version)


def drop_record(row: OutboxRow, reason: str, subject: Subject | None, instance: str, at: datetime) -> AuditRecord:
    """A queued message not delivered because its consent no longer allows it (rule 9)."""
    row_headers = dict(row.headers)
    return AuditRecord(
        event_type="delivery-dropped", action="drop-at-delivery", occurred_at=at, outcome="deny", reason=reason,
        purpose=row_headers.get("purpose"), instance=instance, recipient_org=row.recipient,
        consent_ref=f"{row.consent_id}@{row.consent_version}" if row.consent_id else None,
        subject_ref=_ref(subject.subject_key if subject else None),
        message_ids=(row.message_id,), correlation_id=row_headers.get("correlation-id"),
        request_id=row_headers.get("request-id"),
    )


# --- consents -----------------------------------------------------------------------------------------------


def consent_change_record(action: str, record: ConsentRecord, subject_key: bytes | None, organisation: str,
                          client_id: str, request_id: str, instance: str, at: datetime, *,
                          recipient: str | None = None, message_id: str | None = None) -> AuditRecord:
    """A consent recorded, withdrawn or given again, or a restriction notice sent (``message_id``). The
    version's hash is recorded, so a stored consent altered afterwards no longer matches the log."""
    return AuditRecord(
        event_type="consent-change", action=action, occurred_at=at, outcome="success",
        purpose=",".join(sorted(record.purposes)), consent_ref=record.ref, client_id=client_id,
        consent_hash=record.record_hash if message_id is None else None,
        requesting_org=organisation, instance=instance, recipient_org=recipient,
        message_ids=(message_id,) if message_id else (), subject_ref=_ref(subject_key), request_id=request_id,
    )


def notice_acknowledged_record(notice_id: str, organisation: str, client_id: str, subject_key: bytes | None,
                               instance: str, request_id: str, at: datetime) -> AuditRecord:
    """A recipient confirmed it acted on a restriction notice (art. 19)."""
    return AuditRecord(
        event_type="consent-change", action="notice-acknowledged", occurred_at=at, outcome="success",
        client_id=client_id, requesting_org=organisation, instance=instance, recipient_org=organisation,
        message_ids=(notice_id,), request_id=request_id, subject_ref=_ref(subject_key),
    )


def consent_withdrawn_event(record: ConsentRecord, topics: TopicSettings, now: datetime,
                            request_id: str) -> OutboxRow:
    """The one ``consent.withdrawn`` event of a withdrawal, on the consent events topic (rule 10)."""
    body = {"event": "consent.withdrawn", "consent_ref": record.ref, "withdrawn_at": now.isoformat(),
            "purposes": sorted(record.purposes), "recipients": sorted(record.recipients)}
    return OutboxRow(
        topic=topics.consent_events(), recipient="gateway", message_id=f"withdrawn-{record.ref}",
        value=orjson.dumps(body), key=record.consent_id.encode(),
        headers=(("message-type", "consent.withdrawn"), ("request-id", request_id)), created_at=now,
    )


def restriction_notices(record: ConsentRecord, disclosures: Sequence[tuple[str, str]], topics: TopicSettings,
                        now: datetime, request_id: str) -> list[OutboxRow]:
    """One art. 19 notice per past recipient, naming exactly the messages it received under the consent."""
    by_recipient: dict[str, list[str]] = {}
    for recipient, message_id in disclosures:
        by_recipient.setdefault(recipient, []).append(message_id)
    notices = []
    for recipient, message_ids in sorted(by_recipient.items()):
        notice_id = f"notice-{uuid.uuid4()}"
        body = {
            "message_type": "consent.restriction-notice", "notice_id": notice_id, "consent_ref": record.ref,
            "withdrawn_at": now.isoformat(), "legal_reference": "GDPR art. 7(3), art. 19",
            "action": "stop-processing-and-erase-unless-another-basis-applies",
            "disclosures": sorted(message_ids),
            "acknowledge": f"POST /v1/partners/{recipient}/notices/{notice_id}/ack",
        }
        notices.append(OutboxRow(
            topic=topics.name("out", recipient), recipient=recipient, message_id=notice_id,
            value=orjson.dumps(body), key=record.consent_id.encode(),  # never the pseudonym: shared by all
            headers=(("message-id", notice_id), ("message-type", "consent.restriction-notice"),
                     ("request-id", request_id)),
            created_at=now, subject_pseudonym=record.subject_pseudonym,
        ))
    return notices


# --- privacy office, retention, statistics ------------------------------------------------------------------


def privacy_query_record(query: str, client_id: str, token_id: str | None, organisation: str, instance: str,
                         request_id: str, at: datetime, subject: str | None,
                         queried_ref: str | None = None) -> AuditRecord:
    """A privacy officer's read (a report, a consent history, the review queue, a checkpoint or proof)."""
    return AuditRecord(
        event_type="privacy-query", action=query, occurred_at=at, outcome="success", purpose="privacy-oversight",
        client_id=client_id, token_id=token_id, requesting_org=organisation, instance=instance,
        subject_ref=subject, request_id=request_id, queried_ref=queried_ref,
    )


def console_session_record(action: Literal["sign-in", "sign-out"], method: str, instance: str, request_id: str,
                           at: datetime, officer: str | None = None, organisation: str | None = None,
                           session_ref: str | None = None, failure: str | None = None) -> AuditRecord:
    """A console sign-in or sign-out, action ``sign-in-local``, ``sign-in-oidc`` or ``sign-out``: who (the
    officer's stable subject, never a name), their organisation and the session's reference. A failed sign-in
    (``failure``: a coded reason) names only the method: nothing the person typed, which may be anything."""
    return AuditRecord(
        event_type="console-session", action=f"sign-in-{method}" if action == "sign-in" else "sign-out",
        occurred_at=at, outcome="failure" if failure else "success", reason=failure, purpose="privacy-oversight",
        client_id=officer, token_id=session_ref, requesting_org=organisation, instance=instance,
        request_id=request_id,
    )


def token_issued_record(client_id: str, token_id: str, organisation: str, scopes: tuple[str, ...],
                        expires_at: datetime, instance: str, request_id: str, at: datetime) -> AuditRecord:
    """An access token handed to a client (never the token itself): who, which scopes, its ``jti``, until when."""
    return AuditRecord(
        event_type="token-issued", action="issue-token", occurred_at=at, outcome="success", client_id=client_id,
        token_id=token_id, requesting_org=organisation, instance=instance, request_id=request_id, scopes=scopes,
        expires_at=expires_at,
    )


def erasure_record(erased: bool, counts: Mapping[str, int] | None, client_id: str, token_id: str | None,
                   organisation: str, instance: str, request_id: str, at: datetime,
                   approves: int | None = None) -> AuditRecord:
    """An erasure by crypto-shredding (art. 17), or the attempt when no one had that identifier; it names no
    subject, only what was removed, and (``approves``) the log index of the erasure request it approved."""
    return AuditRecord(
        event_type="erasure", action="erase-subject", occurred_at=at, outcome="success" if erased else "failure",
        reason=None if erased else "no-subject", purpose="subject-request", client_id=client_id,
        token_id=token_id, requesting_org=organisation, instance=instance, request_id=request_id,
        counts=dict(counts) if counts is not None else None,
        queried_ref=None if approves is None else f"erasure-request/{approves}",
    )


def erasure_request_record(client_id: str, token_id: str | None, organisation: str, instance: str,
                           request_id: str, at: datetime, subject: str | None) -> AuditRecord:
    """A privacy officer's request to erase a person, which changes nothing until a second officer approves it:
    it carries the person's keyed audit reference (None: no one is linked to the identifier), so that the
    approval can be checked against it, and it resolves to no one once the erasure destroyed the key."""
    return AuditRecord(
        event_type="erasure", action="request-erasure", occurred_at=at, outcome="success",
        purpose="subject-request", client_id=client_id, token_id=token_id, requesting_org=organisation,
        instance=instance, request_id=request_id, subject_ref=subject,
    )


def retention_record(counts: Mapping[str, int], instance: str, at: datetime) -> AuditRecord:
    """A retention run: what was purged, by flow and kind (nothing personal)."""
    return AuditRecord(event_type="retention", action="purge-expired", occurred_at=at, outcome="success",
                       instance=instance, counts=dict(sorted(counts.items())) or None)


# --- operations ----------------------------------------------------------------------------------------------


def dead_letter_replay_record(entry_id: str, partner: str, requested_by: str, outcome: str,
                              message_ids: Sequence[str], source: KafkaCoordinates | None, instance: str,
                              request_id: str, at: datetime) -> AuditRecord:
    """A dead-lettered message put back through the intake on an operator's request: who asked
    (``client_id``), which entry (``queried_ref``), the source record, and what came of it — ``decided``,
    ``already-decided`` (the replay guard absorbed it), ``still-invalid``, or ``source-gone``. It names no
    person: the decisions the replay took carry their own records."""
    return AuditRecord(
        event_type="dead-letter-replay", action="replay-dead-letter", occurred_at=at,
        outcome="success" if outcome in ("decided", "already-decided") else "failure",
        reason=outcome, client_id=requested_by, source_org=partner, instance=instance,
        message_ids=tuple(message_ids), request_id=request_id, kafka=source, queried_ref=entry_id,
    )


def aggregate_row(flow: Flow, topics: TopicSettings, correlation_id: str, message_id: str, value: bytes, period: str,
                  request_id: str, message_type: str, schema_version: str, now: datetime) -> OutboxRow:
    """A published statistics aggregate (F6, F13) for the flow's recipient."""
    return OutboxRow(topic=topics.name("out", flow.recipient), recipient=flow.recipient, message_id=message_id,
                     value=value,
                     key=f"{flow.id}:{period}".encode(),
                     headers=headers(message_id, correlation_id, request_id, message_type, schema_version,
                                     flow.purpose), created_at=now)


def aggregate_publication_record(flow: Flow, correlation_id: str, message_id: str, request_id: str,
                                 policy_revision: str, instance: str, now: datetime) -> AuditRecord:
    """The disclosure of a statistics aggregate: no subject, the flow's fields and labels."""
    return AuditRecord(
        event_type="disclosure", action="publish-aggregate", occurred_at=now, outcome="permit",
        purpose=flow.purpose, legal_basis=flow.legal_basis, flow_id=flow.id, policy_revision=policy_revision,
        instance=instance, source_org=flow.sender, recipient_org=flow.recipient, message_ids=(message_id,),
        correlation_id=correlation_id, request_id=request_id, data_categories=flow.allowed_fields,
        labels=(flow.sensitivity,), obligations=(*flow.obligations, *flow.refrains),
    )
