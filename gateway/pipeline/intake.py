"""Intake: one partner message in, decisions and minimised outgoing messages committed together.

decode (adapter) -> identify (pseudonym) -> decide per recipient (flow registry + consent) -> minimise and
encode per permitted recipient (a permit whose message is only sensitive data it does not permit becomes a
denial, privacy.md rule 7) -> one transaction: status row, audit records (one per decision, one per
disclosure), outbox rows (``out.<recipient>`` and ``status.<sender>``), the events the statistics flows count
(:func:`gateway.statistics.counting.activity_of`). A replayed message id returns the
status recorded the first time and forwards nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from gateway.audit.record import AuditRecord, KafkaCoordinates
from gateway.bus.errors import BusError
from gateway.consents.index import ConsentIndex
from gateway.errors import (
    ContractViolation,
    DependencyUnavailable,
    MalformedMessage,
    NotPermitted,
    PayloadTooLarge,
    UnknownPartner,
)
from gateway.identity.crosswalk import MintedToken, recording, restore_quoted, subject_of_quoted_token
from gateway.logging import get_logger
from gateway.observability.observer import PipelineObserver
from gateway.pipeline import ledger
from gateway.policy import Decision, DecisionRequest, PolicyRegistry, decide, sender_reason_class
from gateway.policy.consent import ConsentRecord
from gateway.policy.decision import only_sensitive
from gateway.policy.minimise import OnlySensitiveData, Tokeniser, minimise_with_redactions
from gateway.policy.registry import Flow
from gateway.routing import Decoder, Encoder, OutboundLabels, encode_canonical, screen_identifiers
from gateway.settings import TopicSettings
from gateway.statistics.counting import ActivityEvent, activity_of
from gateway.store import MessageStatus, OutboxRow, PipelineStore, PipelineTransaction, Subject
from gateway.uuids import uuid7_text
from schemas.envelope import Envelope, SubjectRef
from schemas.errors import DecodeError

__all__ = ["Intake", "Submission"]

log = get_logger(__name__)

_PERSON_SYSTEMS = ("cf", "stp", "eni", "asst-patient")
"""Identifiers of one person (never of a household or a case), in the order they are trusted."""


@dataclass(frozen=True, slots=True)
class Submission:
    """A message as it reached the gateway, with who sent it and how."""

    sender: str
    """Organisation the message comes from: the token's organisation (HTTP) or the topic's partner (Kafka)."""
    sender_role: str
    raw: bytes
    content_type: str
    request_id: str
    client_id: str | None = None
    token_id: str | None = None
    kafka: KafkaCoordinates | None = None
    trace_id: str | None = None
    """W3C trace id from the sender's ``traceparent`` (:mod:`gateway.trace_context`), recorded in the audit."""
    traceparent: str | None = None
    """The sender's ``traceparent`` itself, which the message's trace continues (:mod:`gateway.observability`)."""


class Intake:
    """Turns submissions into committed decisions; safe to call concurrently and to retry."""

    def __init__(
        self,
        store: PipelineStore,
        registry: PolicyRegistry,
        topics: TopicSettings,
        decoders: Mapping[str, Decoder],
        encoders: Mapping[tuple[str, str], Encoder],
        instance_id: str,
        max_bytes: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        tokenise: Tokeniser | None = None,
        consent_index: ConsentIndex | None = None,
    ) -> None:
        self.store = store
        self.consent_index = consent_index if consent_index is not None else ConsentIndex()
        """The consents decisions read (:mod:`gateway.consents.index`); until it is loaded, the store's."""
        self.tokenise = tokenise
        self.on_enqueued: Callable[[], None] | None = None
        """Called after a commit that queued outgoing messages the intake did not deliver itself (the relay's
        wake-up)."""
        self.deliver: Callable[[Sequence[OutboxRow]], Awaitable[int]] | None = None
        """Delivers the outgoing messages of a batch straight after its commit (:meth:`Relay.deliver
        <gateway.pipeline.relay.Relay.deliver>`, set while the gateway's workers run); None leaves them to the
        relay's sweep."""
        self.observer = PipelineObserver()
        self.registry = registry
        self.topics = topics
        self.decoders = decoders
        self.encoders = encoders
        self.instance_id = instance_id
        self.max_bytes = max_bytes
        self.clock = clock
        self._claim_first = True
        """Claim the next batch's message ids before deciding it: set after a batch with replays, cleared
        after one without (:meth:`process`). Set at first, and again by :meth:`expect_replays`: a process that
        starts, or a consumer given partitions, reads first what was decided but whose offsets were not
        committed, and a batch decided without claiming first would then only be rolled back."""

    def expect_replays(self) -> None:
        """The next batch is likely to hold messages decided before (the inbound consumer was given partitions
        whose uncommitted records another member decided): claim its message ids first (:meth:`process`)."""
        self._claim_first = True

    def decode(self, submission: Submission) -> list[Envelope]:
        """Adapter step; raises an :class:`~gateway.errors.InputError` the sender can act on."""
        if len(submission.raw) > self.max_bytes:
            raise PayloadTooLarge(f"message is {len(submission.raw)} bytes; the limit is {self.max_bytes}")
        decoder = self.decoders.get(submission.sender)
        if decoder is None:
            raise UnknownPartner(f"the gateway accepts no messages from organisation {submission.sender!r}")
        try:
            envelopes = screen_identifiers(decoder(submission.raw, submission.content_type))
        except DecodeError as exc:
            error = MalformedMessage if exc.kind == "malformed" else ContractViolation
            raise error(exc.detail, exc.problems) from None
        for envelope in envelopes:
            if envelope.sender != submission.sender:
                raise NotPermitted("a partner may submit messages only as itself")
        return envelopes

    async def submit(self, submission: Submission) -> list[MessageStatus]:
        """Decode and process every envelope of the submission; returns one status per envelope."""
        return await self.process([(envelope, submission) for envelope in self.decode(submission)])

    async def process(self, items: Sequence[tuple[Envelope, Submission]], *,
                      handoff: Callable[[Sequence[OutboxRow]], Awaitable[None]] | None = None) -> list[MessageStatus]:
        """Decide already decoded envelopes in one transaction, set-based: the batch's subjects are looked up in
        one or two statements and their consents read from the process's consent index (brought up to date in
        the same transaction), and the statuses, audit records, outgoing messages, tokens and counted events
        are written one statement per kind; so a burst costs a handful of round trips in all, not several per
        message.

        A replayed message id is never decided twice. The statuses are written once, decided, by a statement
        that inserts only message ids never seen (``ON CONFLICT DO NOTHING``): if one of them was seen after
        all, the transaction is rolled back and the batch decided again the careful way, which claims its
        message ids first and decides only the new ones (:meth:`_decide_batch`). Replays come in runs (a
        consumer reading a batch again after a crash or a rebalance), so after one the intake claims first
        until a batch comes without replays.

        After the commit the outgoing messages are delivered (:meth:`deliver_committed`) before this returns,
        or handed to ``handoff`` (the inbound consumer's :class:`~gateway.pipeline.delivery.DeliveryLane`),
        which delivers them while the caller decides its next batch."""
        if not items:
            return []
        now = self.clock()
        if not self._claim_first:
            try:
                return await self._decide_batch(items, now, handoff, claim_first=False)
            except _SeenBefore:
                self._claim_first = True
        return await self._decide_batch(items, now, handoff, claim_first=True)

    async def _decide_batch(self, items: Sequence[tuple[Envelope, Submission]], now: datetime,
                            handoff: Callable[[Sequence[OutboxRow]], Awaitable[None]] | None, *,
                            claim_first: bool) -> list[MessageStatus]:
        """One transaction for the batch (:meth:`process`). ``claim_first``: claim the message ids before
        deciding, and decide only those never seen; otherwise decide every first copy and write its status
        only if its message id was never seen, raising :class:`_SeenBefore` (which rolls everything back) if
        one was."""
        batch = _Batch(claim_first=claim_first)
        async with self.store.transaction() as tx:
            received = [self._received(envelope, submission, now) for envelope, submission in items]
            claimed = await tx.claim_messages(received) if claim_first else None
            fresh: list[int] = []  # first copies not seen before (when claimed first): the ones decided
            seen: set[tuple[str, str]] = set()
            for index, status in enumerate(received):
                if (key := (status.sender, status.message_id)) in seen:
                    continue  # a second copy in the same batch is a replay of the first
                seen.add(key)
                if claimed is None or key in claimed:
                    fresh.append(index)
            await tx.prefetch_subjects(ident for i in fresh for ident in _person_identifiers(items[i][0].subject))
            tx.defer_new_subjects()  # people seen for the first time are written together, below
            identified = [await self._identified(tx, items[i][0]) for i in fresh]
            if not await tx.write_new_subjects():  # another worker saw one of them first: again, one by one
                identified = [await self._identified(tx, items[i][0]) for i in fresh]
            consents = await self.consent_index.current(tx, {subject.pseudonym for _, subject in identified})
            decided: dict[int, MessageStatus] = {}
            for index, (envelope, subject) in zip(fresh, identified, strict=True):
                decided[index] = await self._decide(tx, envelope, items[index][1], subject,
                                                    consents[subject.pseudonym], now, batch)
            await _record_outcomes(tx, batch)
            replayed = [received[i] for i in range(len(items)) if i not in decided]
            existing = await tx.messages_many({(r.sender, r.message_id) for r in replayed})
            observed = self.observer.batch(items, batch.rows, now)
            batch.rows = await tx.enqueue(batch.rows)  # with their ids, which delivery claims them by
            await tx.record_tokens(batch.minted)  # so that a recipient can quote them back (crosswalk)
            await tx.record_activity(batch.activity)
            # Last: the audit head row serialises every writer, so it is locked only for the commit's length.
            await tx.append_audit(batch.audit)
        if claim_first:  # the next batch claims first too if this one had messages seen before
            self._claim_first = len(decided) < len(seen)
        statuses = [decided.get(i) or existing.get((r.sender, r.message_id)) or r for i, r in enumerate(received)]
        observed.committed(statuses, decided, batch.audit)
        _log_batch(statuses, decided)
        for record in batch.alerts:
            log.warning("emergency-override-alert", flow=record.flow_id, decision_id=record.decision_id,
                        outcome=record.outcome)
        if batch.rows:
            await (handoff or self.deliver_committed)(batch.rows)
        return statuses

    async def deliver_committed(self, rows: Sequence[OutboxRow]) -> None:
        """Hand the committed rows to delivery at once; if it fails (store or bus down) they stay queued and
        the relay's sweep, woken here, delivers them: the batch itself is decided and durable either way."""
        if self.deliver is not None:
            try:
                await self.deliver(rows)
                return
            except (DependencyUnavailable, BusError) as exc:
                log.warning("delivery-left-to-relay", count=len(rows), error_type=type(exc.__cause__ or exc).__name__)
        if self.on_enqueued is not None:
            self.on_enqueued()

    @staticmethod
    def _received(envelope: Envelope, submission: Submission, now: datetime, state: str = "received",
                  reason_class: str | None = None, recipients: tuple[str, ...] = ()) -> MessageStatus:
        """The message's status: received, or (``state`` and the rest) what was decided about it."""
        return MessageStatus(
            sender=envelope.sender, message_id=envelope.message_id, correlation_id=envelope.correlation_id,
            message_type=envelope.message_type, state=state, reason_class=reason_class, recipients=recipients,
            received_at=now, request_id=submission.request_id,
        )

    async def _identified(self, tx: PipelineTransaction, envelope: Envelope) -> tuple[Envelope, Subject]:
        """The envelope with its subject's pseudonym (and any quoted token restored), and the subject."""
        subject = await self._identify(tx, envelope.subject, envelope.sender)
        restored = await restore_quoted(tx, envelope.subject, envelope.sender, subject)
        envelope = envelope.about(SubjectRef(identifiers=restored.identifiers, pseudonym=subject.pseudonym))
        return envelope, subject

    async def _decide(self, tx: PipelineTransaction, envelope: Envelope, submission: Submission, subject: Subject,
                      consents: Sequence[ConsentRecord], now: datetime, batch: _Batch) -> MessageStatus:
        labels = ledger.message_labels(envelope)
        decisions = [
            batch.decided(
                DecisionRequest(
                    sender=envelope.sender, sender_role=submission.sender_role, recipient=recipient,
                    message_type=envelope.message_type, purpose=envelope.purpose,
                    subject_pseudonym=subject.pseudonym, labels=labels,
                    masked_at_source=envelope.payload.get("masked_at_source") is True,
                    occurred_at=envelope.occurred_at,
                ),
                lambda request: decide(request, self.registry, consents, now),
            )
            for recipient in self._recipients(envelope)
        ]
        audit_ref = ledger.subject_audit_ref(subject)  # a keyed hash: once for all the message's records
        for index, decision in enumerate(decisions):
            disclosed: OutboxRow | None = None
            redacted: list[str] = []
            if decision.permitted:
                try:
                    disclosed = self._disclosure(envelope, subject, decision, submission, now, batch.minted,
                                                 redacted, batch.record_keys)
                except OnlySensitiveData:
                    decision = decisions[index] = only_sensitive(decision)
            batch.audit.append(ledger.decision_record(envelope, submission, audit_ref, decision, self.instance_id))
            if batch.audit[-1].alert:
                batch.alerts.append(batch.audit[-1])  # logged once the batch has committed
            if disclosed is not None:
                batch.rows.append(disclosed)
                batch.audit.append(ledger.decision_record(envelope, submission, audit_ref, decision,
                                                          self.instance_id, disclosed_as=disclosed.message_id,
                                                          redacted=redacted))
        batch.activity += activity_of(envelope, decisions, now)  # F6/F13 counts: no person, no message id
        permitted = tuple(d.recipient for d in decisions if d.permitted)
        denial = next((d for d in decisions if not d.permitted), None)
        status = self._received(
            envelope, submission, now, state="forwarded" if permitted else "denied",
            reason_class=None if permitted or denial is None or denial.reason is None
            else sender_reason_class(denial.reason, denial.flow),
            recipients=permitted,
        )
        batch.statuses.append(status)
        batch.rows.append(self._status_row(status, subject, now, keys=batch.record_keys))
        for decision in decisions:
            if decision.permitted and decision.flow is not None and decision.flow.lifecycle is not None:
                # the referral answered may be earlier in this very batch: its status must be written first
                await _record_outcomes(tx, batch)
                batch.rows += await self._advance_referral(tx, envelope, decision.flow, subject, now)
        return status

    async def _advance_referral(self, tx: PipelineTransaction, envelope: Envelope, flow: Flow, subject: Subject,
                                now: datetime) -> list[OutboxRow]:
        """A recipient's feedback (an FWA outcome, a Comune case status, an ASST visit) moves the referral
        its recipient originally sent along received -> accepted | rejected -> completed; the original
        sender hears of it on its status topic. The referral is what the feedback's sender received under the
        same correlation id on a flow of the same purpose (F1 for an FWA outcome, F2 for a case status, F4 for
        a visit), never another message sharing that correlation id."""
        assert flow.lifecycle is not None
        state = flow.lifecycle.states.get(str(envelope.payload.get(flow.lifecycle.field)))
        if state is None:
            return []
        answered = {f.message_type for f in self.registry.flows
                    if f.sender == flow.recipient and f.recipient == flow.sender and f.purpose == flow.purpose}
        updated = await tx.advance_lifecycle(flow.recipient, envelope.correlation_id, state, now,
                                             reported_by=flow.sender, message_types=answered)
        return [self._status_row(s, subject, now, suffix=f"-{state}") for s in updated]

    async def _identify(self, tx: PipelineTransaction, subject: SubjectRef, sender: str) -> Subject:
        """The person the message is about: by codice fiscale, STP or ENI code or ASST patient id first — any
        one that is already known leads to them, and the others are linked to them (rule 4: a subject matches
        through any identifier); by a crosswalk token the gateway gave the sender, quoted back, next (a token
        that is not the sender's is refused); by a referral id the gateway minted (FWA quotes it in outcomes)
        next; by the sender's own identifier otherwise."""
        personal = _person_identifiers(subject)
        if personal:
            return await self._identify_person(tx, personal)
        quoted = await subject_of_quoted_token(tx, subject, sender)
        if quoted is not None:
            return quoted
        referral = subject.first("fwa-referral")
        if referral is not None:
            received_on = (self.topics.name("out", sender), self.topics.name("s4.out", sender))
            known = await tx.subject_of_disclosure(referral, received_on)
            if known is not None:
                return known
        identifier = subject.identifiers[0]
        found = await tx.subject(identifier.system, identifier.value, create=True)
        assert found is not None
        return found

    @staticmethod
    async def _identify_person(tx: PipelineTransaction, personal: list[tuple[str, str]]) -> Subject:
        """Found through the first identifier already known (created on the first if none is); the others
        are linked to them."""
        found, others = None, personal[1:]
        for index, (system, value) in enumerate(personal):
            found = await tx.subject(system, value, create=False)
            if found is not None:
                others = personal[:index] + personal[index + 1:]
                break
        else:
            found = await tx.subject(*personal[0], create=True)
        assert found is not None
        for system, value in others:
            await tx.link_identifier(found, system, value)
        return found

    def _recipients(self, envelope: Envelope) -> list[str]:
        if envelope.recipients:
            return list(dict.fromkeys(envelope.recipients))
        declared = self.registry.flows_for(envelope.sender, envelope.message_type, envelope.purpose or "")
        # No declared flow: decide once against "no recipient", which denies, so the denial is audited.
        return [f.recipient for f in declared] or [""]

    def _disclosure(self, envelope: Envelope, subject: Subject, decision: Decision, submission: Submission,
                    now: datetime, minted: list[MintedToken] | None = None,
                    redacted: list[str] | None = None, keys: dict[tuple[str, str], bytes] | None = None) -> OutboxRow:
        """The outgoing message for one permitted decision; tokens minted for it are appended to ``minted``, the
        sensitive labels redacted from it to ``redacted``. Raises :class:`OnlySensitiveData` (nothing minted)."""
        flow = decision.flow
        assert flow is not None
        message_id = f"gw-{uuid7_text()}"
        fresh: list[MintedToken] = []
        tokenise = None if self.tokenise is None else recording(self.tokenise, subject.pseudonym, fresh)
        minimised = minimise_with_redactions(envelope, flow, message_id, tokenise, decision.permitted_labels)
        outgoing = minimised.envelope
        if minted is not None:
            minted += fresh
        if redacted is not None:
            redacted += minimised.redacted
        labels = OutboundLabels(decision.consent_ref, decision.obligations, decision.refrains)
        encoder = self.encoders.get((flow.recipient, flow.outbound_message_type), encode_canonical)
        return ledger.outgoing_message(
            topic=self.topics.name("s4.out" if flow.restricted_topic else "out", flow.recipient),
            recipient=flow.recipient, message_id=message_id, value=encoder(outgoing, labels),
            key=self._record_key(flow.recipient, subject.pseudonym, keys),
            message_headers=ledger.headers(message_id, envelope.correlation_id, submission.request_id,
                                           flow.outbound_message_type, envelope.schema_version, flow.purpose),
            now=now, consent_ref=decision.consent_ref, subject_pseudonym=subject.pseudonym,
        )

    def _record_key(self, recipient: str, pseudonym: str, keys: dict[tuple[str, str], bytes] | None) -> bytes:
        """The record key of what ``recipient`` receives about a person, computed once per batch (``keys``)."""
        if keys is None:
            return ledger.record_key(self.tokenise, recipient, pseudonym)
        found = keys.get((recipient, pseudonym))
        if found is None:
            found = keys[(recipient, pseudonym)] = ledger.record_key(self.tokenise, recipient, pseudonym)
        return found

    def _status_row(self, status: MessageStatus, subject: Subject, now: datetime, suffix: str = "",
                    keys: dict[tuple[str, str], bytes] | None = None) -> OutboxRow:
        return ledger.status_row(status, self._record_key(status.sender, subject.pseudonym, keys),
                                 self.topics, now, suffix)


@dataclass
class _Batch:
    """What deciding one batch produces, written once per kind when the batch is done."""

    audit: list[AuditRecord] = field(default_factory=list)
    rows: list[OutboxRow] = field(default_factory=list)
    activity: list[ActivityEvent] = field(default_factory=list)
    minted: list[MintedToken] = field(default_factory=list)
    claim_first: bool = True
    """The batch's message ids were claimed before it was decided (:meth:`Intake.process`): its outcomes
    update their statuses; otherwise they are the statuses, written once."""
    statuses: list[MessageStatus] = field(default_factory=list)
    """Outcomes not yet written to the message statuses (see :meth:`take_statuses`)."""
    alerts: list[AuditRecord] = field(default_factory=list)
    """Decisions of emergency flows, logged as alerts once the batch has committed (rule 11)."""
    record_keys: dict[tuple[str, str], bytes] = field(default_factory=dict)
    """(recipient, pseudonym) -> record key, each computed once per batch (a keyed hash)."""

    decisions: dict[DecisionRequest, Decision] = field(default_factory=dict)
    """Decisions taken in this batch, by question: a batch decides against one set of consents at one time, and
    :func:`~gateway.policy.decide` is pure, so the same question asked again gets the same answer."""

    def decided(self, request: DecisionRequest, decide_now: Callable[[DecisionRequest], Decision]) -> Decision:
        """The decision on ``request``, taken once per batch; every message gets a decision id of its own."""
        known = self.decisions.get(request)
        if known is None:
            known = self.decisions[request] = decide_now(request)
            return known
        return replace(known, decision_id=uuid7_text())

    def take_statuses(self) -> list[MessageStatus]:
        taken, self.statuses = self.statuses, []
        return taken


class _SeenBefore(Exception):
    """A message id of a batch decided without claiming first turned out to be seen before (a replay, or
    the same message decided meanwhile by another worker): the batch's transaction is rolled back."""


async def _record_outcomes(tx: PipelineTransaction, batch: _Batch) -> None:
    """Write the outcomes decided so far: as updates of the statuses claimed first, or as the statuses
    themselves, inserted only where the message id was never seen (raises :class:`_SeenBefore` otherwise)."""
    outcomes = batch.take_statuses()
    if batch.claim_first:
        await tx.update_messages(outcomes)
    elif not await tx.insert_messages(outcomes):  # one status per message: first copies only
        raise _SeenBefore


def _person_identifiers(subject: SubjectRef) -> list[tuple[str, str]]:
    return [(i.system, i.value) for i in subject.identifiers if i.system in _PERSON_SYSTEMS]


def _log_batch(statuses: Sequence[MessageStatus], decided: Mapping[int, MessageStatus]) -> None:
    """One ``batch-decided`` line per batch (counts by outcome; a lone message also by id), and at DEBUG one
    ``message-decided`` or ``replay-ignored`` line per message: a line per message was about a tenth of the
    gateway's CPU per referral under load. Each message's decision is in the audit log and its status API."""
    outcomes = Counter(status.state for index, status in enumerate(statuses) if index in decided)
    lone = statuses[0] if len(statuses) == 1 else None
    log.info("batch-decided", messages=len(statuses), forwarded=outcomes["forwarded"], denied=outcomes["denied"],
             replays=len(statuses) - len(decided), message_id=lone.message_id if lone else None,
             sender=lone.sender if lone else None, request_id=lone.request_id if lone else None)
    if logging.getLogger(__name__).isEnabledFor(logging.DEBUG):  # the level configure_logging set
        for index, status in enumerate(statuses):
            if index in decided:
                log.debug("message-decided", message_id=status.message_id, sender=status.sender,
                          outcome=status.state, reason=status.reason_class, count=len(status.recipients),
                          request_id=status.request_id)
            else:
                log.debug("replay-ignored", message_id=status.message_id, sender=status.sender)
