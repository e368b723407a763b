"""Inbound consumer: partner messages produced to ``in.<partner>`` go through the same intake as HTTP.

The topic names the sender (partners are authenticated to Kafka and allowed to write only their own
``in.`` topic). A message that cannot be accepted goes to ``dlq.<partner>`` with a reason and its source
coordinates (not a copy of the payload) and the consumer carries on; when the store is unavailable the
consumer does not commit and retries the same records after a back-off, so nothing is lost.

A decided batch's outgoing messages are delivered by a :class:`~gateway.pipeline.delivery.DeliveryLane` while
the next batch is fetched and decided (in commit order, at most one batch waiting), and the lane delivers what
is queued before the consumer leaves.

Offsets are committed after the batches they cover are decided and committed to the store, batched: at most every
``commit_interval_s`` while records keep coming, at once when a fetch comes back empty, and when the consumer
stops. A crash re-reads what was decided since the last offset commit, and the replay guard absorbs it. A commit
the group refuses because it rebalanced meanwhile (:class:`~gateway.bus.errors.CommitFailed`: a member joined or
left, or this one took longer than the poll interval) is expected in a consumer group, not a fault: the consumer
counts it and keeps fetching, the next fetch rejoins the group, and the batch is read again by whichever member
owns its partitions; the intake's replay guard (message ids claimed once) makes the repeat decide nothing twice. A
fetch or commit the bus cannot do now (retriable) is retried after a back-off; anything else ends
:meth:`InboundConsumer.run`, and the gateway's supervisor restarts it (:mod:`gateway.supervision`).

:attr:`InboundConsumer.progress` is what readiness reports: group membership, assigned partitions, batches,
commits and commit failures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.audit.record import KafkaCoordinates
from gateway.bus.errors import BusError, BusUnavailable, CommitFailed
from gateway.bus.port import Bus, BusConsumer, BusRecord, OutgoingRecord
from gateway.errors import DependencyUnavailable, GatewayError
from gateway.identifiers import holds_personal_data
from gateway.logging import get_logger
from gateway.observability.observer import PipelineObserver
from gateway.pipeline.delivery import DeliveryLane
from gateway.pipeline.intake import Intake, Submission
from gateway.settings import TopicSettings
from gateway.store import OutboxRow
from gateway.trace_context import trace_id_of
from gateway.uuids import uuid7_text
from schemas.envelope import Envelope

__all__ = ["ConsumerProgress", "InboundConsumer"]

log = get_logger(__name__)

_REQUEST_ID_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def _request_id(record: BusRecord) -> str:
    """The record's ``request-id`` header when it is plain and names no person (it is written to the audit
    log), else a minted one."""
    given = record.header("request-id")
    if given and len(given) <= 64 and set(given) <= _REQUEST_ID_OK and not holds_personal_data(given):
        return given
    return uuid7_text()


@dataclass
class ConsumerProgress:
    """Membership and progress of the inbound consumer, as readiness reports them."""

    group_id: str
    """The consumer group the gateway's processes share."""
    member: bool = False
    """True between joining the group (the consumer started) and leaving it."""
    assigned: list[tuple[str, int]] = field(default_factory=list)
    """(topic, partition) pairs this member reads, as of its last fetch; empty during a rebalance or when the
    group has more members than partitions."""
    batches: int = 0
    """Batches decided since the gateway started."""
    records: int = 0
    """Records in those batches."""
    commits: int = 0
    """Offset commits the group accepted."""
    commit_failures: int = 0
    """Offset commits refused because the group rebalanced (the batch is read again) or the bus failed."""
    last_fetch_at: datetime | None = None
    """When the consumer last asked the bus for records (it does so at least every fraction of a second)."""
    last_commit_at: datetime | None = None
    """When the group last accepted a commit."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group_id, "member": self.member,
            "assigned_partitions": [f"{topic}:{partition}" for topic, partition in self.assigned],
            "batches": self.batches, "records": self.records, "commits": self.commits,
            "commit_failures": self.commit_failures,
            "last_fetch_at": self.last_fetch_at.isoformat() if self.last_fetch_at else None,
            "last_commit_at": self.last_commit_at.isoformat() if self.last_commit_at else None,
        }


class InboundConsumer:
    """Consumes ``in.<partner>`` topics in consumer group ``group_id`` and feeds the intake."""

    def __init__(self, intake: Intake, bus: Bus, topics: TopicSettings, partners: Sequence[str],
                 group_id: str = "gateway-intake", max_records: int = 200, commit_interval_s: float = 0.5) -> None:
        self.intake = intake
        self.bus = bus
        self.topics = topics
        self.partner_of = {topics.name("in", p): p for p in partners}
        self.group_id = group_id
        self.max_records = max_records
        self.commit_interval_s = commit_interval_s
        """Longest time decided records wait for their offset commit while more keep coming (a crash re-reads
        at most that much, and the replay guard absorbs it)."""
        self.progress = ConsumerProgress(group_id)
        self.observer = PipelineObserver()
        self._lane: DeliveryLane | None = None
        """Delivers decided batches beside the consumer while :meth:`run` runs; None: :meth:`handle` delivers
        each batch itself before returning."""

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        """Join the group and decide what arrives until ``stop`` is set (see the module docstring)."""
        consumer = self.bus.consumer(self.group_id, sorted(self.partner_of))
        await consumer.start()
        self._lane = lane = DeliveryLane(self.intake.deliver_committed)
        lane.start()
        self.progress.member = True
        if ready is not None:
            ready.set()
        backoff = 0.1
        loop = asyncio.get_running_loop()
        uncommitted = 0
        """Records decided since the last offset commit (every record fetched so far is decided: the commit
        covers them all)."""
        committed_at = loop.time()
        stopped_cleanly = False
        try:
            while not stop.is_set():
                try:
                    records = await consumer.fetch(timeout_s=0.2, max_records=self.max_records)
                except BusUnavailable as exc:
                    if not exc.retriable or stop.is_set():
                        raise
                    log.warning("consumer-fetch-retrying", group=self.group_id, error_type=type(exc).__name__,
                                retry_in_s=backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                backoff = 0.1
                self.progress.last_fetch_at = datetime.now(UTC)
                assigned = consumer.assignment()
                if not set(assigned) <= set(self.progress.assigned):
                    # partitions new to this member: their first records may be ones another member decided
                    # without committing their offsets, so the intake claims message ids first
                    self.intake.expect_replays()
                self.progress.assigned = assigned
                if records:
                    await self._handle_until_done(records, stop)
                    self.progress.batches += 1
                    self.progress.records += len(records)
                    uncommitted += len(records)
                # Offsets are committed after the batches' outbox commits, at most every commit_interval_s
                # while records keep coming, and as soon as a fetch comes back empty: one commit round trip
                # covers many small batches and is never on the way of a lone message.
                if uncommitted and (not records or loop.time() - committed_at >= self.commit_interval_s):
                    await self._commit(consumer, uncommitted)
                    uncommitted, committed_at = 0, loop.time()
            stopped_cleanly = True
        finally:
            self.progress.member = False
            self.progress.assigned = []
            try:
                if stopped_cleanly and uncommitted:  # every record fetched was decided: say so before leaving
                    await self._commit(consumer, uncommitted)
            finally:
                self._lane = None
                try:
                    await lane.close()  # what is queued is delivered (or, cancelled, left to the relay)
                finally:
                    await consumer.stop()

    async def _commit(self, consumer: BusConsumer, records: int) -> None:
        """Commit after a decided batch. A refused commit loses nothing: the batch is read again and the
        replay guard absorbs it; a retriable bus failure is left to the next batch's commit, which covers
        these records too."""
        try:
            await consumer.commit()
        except CommitFailed as exc:
            self.progress.commit_failures += 1
            log.warning("offset-commit-refused-group-rebalanced", group=self.group_id, records=records,
                        error_type=type(exc.__cause__ or exc).__name__)
            return
        except BusUnavailable as exc:
            if not exc.retriable:
                raise
            self.progress.commit_failures += 1
            log.warning("offset-commit-failed-retrying-with-next-batch", group=self.group_id, records=records,
                        error_type=type(exc).__name__)
            return
        self.progress.commits += 1
        self.progress.last_commit_at = datetime.now(UTC)

    async def _handle_until_done(self, records: Sequence[BusRecord], stop: asyncio.Event) -> None:
        backoff = 0.1
        while True:
            try:
                await self.handle(records)
                return
            except (DependencyUnavailable, BusError) as exc:
                if stop.is_set():
                    raise
                log.warning("intake-retrying", records=len(records), error_type=type(exc).__name__,
                            retry_in_s=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def handle(self, records: Sequence[BusRecord]) -> None:
        """Process fetched records: invalid ones are dead-lettered, the rest decided in one transaction.
        Store or bus outages are raised (nothing committed, the caller retries the same records)."""
        items = []
        dead: list[OutgoingRecord] = []
        for record in records:
            partner = self.partner_of[record.topic]
            submission = Submission(
                sender=partner, sender_role="system", raw=record.value,
                content_type=record.header("content-type") or "application/json", request_id=_request_id(record),
                client_id=f"kafka:{partner}",
                kafka=KafkaCoordinates(topic=record.topic, partition=record.partition, offset=record.offset),
                trace_id=trace_id_of(record.header("traceparent")), traceparent=record.header("traceparent"),
            )
            try:
                items += [(envelope, submission) for envelope in self.intake.decode(submission)]
            except GatewayError as exc:
                dead.append(self._dead_letter(record, partner, submission.request_id, exc))
        try:
            # first: a retry after a failed dead-letter publish replays nothing
            await self.intake.process(items, handoff=self._handoff())
        except (DependencyUnavailable, BusError):
            raise
        except Exception:  # a fault of the gateway's own: isolate the record(s) instead of stopping the consumer
            log.error("batch-failed-isolating", records=len(items), exc_info=True)
            dead += await self._process_one_by_one(items)
        if dead:
            await self.bus.publish(dead)
            self.observer.dead_lettered(dead)

    async def _process_one_by_one(self, items: Sequence[tuple[Envelope, Submission]]) -> list[OutgoingRecord]:
        """Process each message in its own transaction; one that still fails is dead-lettered as an internal
        error (nothing of it was committed) and the rest go through."""
        dead = []
        for envelope, submission in items:
            try:
                await self.intake.process([(envelope, submission)], handoff=self._handoff())
            except (DependencyUnavailable, BusError):
                raise
            except GatewayError as exc:  # refused once decided alone (an unknown quoted token): its own reason
                coordinates = submission.kafka
                dead.append(self._dead_letter_entry(
                    coordinates.topic if coordinates else "", coordinates.partition if coordinates else -1,
                    coordinates.offset if coordinates else -1, envelope.message_id, None,
                    self.partner_of.get(coordinates.topic, envelope.sender) if coordinates else envelope.sender,
                    submission.request_id, exc))
            except Exception:
                log.error("message-failed", message_id=envelope.message_id, exc_info=True)
                coordinates = submission.kafka
                error = GatewayError("the gateway failed to process this message; nothing was forwarded")
                dead.append(self._dead_letter_entry(
                    coordinates.topic if coordinates else "", coordinates.partition if coordinates else -1,
                    coordinates.offset if coordinates else -1, envelope.message_id, None,
                    self.partner_of.get(coordinates.topic, envelope.sender) if coordinates else envelope.sender,
                    submission.request_id, error))
        return dead

    def _handoff(self) -> Callable[[Sequence[OutboxRow]], Awaitable[None]] | None:
        """Where a decided batch's outgoing messages go: the delivery lane while :meth:`run` runs."""
        return None if self._lane is None else self._lane.put

    def _dead_letter(self, record: BusRecord, partner: str, request_id: str, exc: GatewayError) -> OutgoingRecord:
        return self._dead_letter_entry(record.topic, record.partition, record.offset, record.header("message-id"),
                                       record.key, partner, request_id, exc)

    def _dead_letter_entry(self, topic: str, partition: int, offset: int, message_id: str | None,
                           key: bytes | None, partner: str, request_id: str, exc: GatewayError) -> OutgoingRecord:
        entry = {
            "reason": exc.slug,
            "title": exc.title,
            "detail": exc.detail,
            "problems": [p.as_dict() for p in exc.problems],
            "source": {"topic": topic, "partition": partition, "offset": offset},
            "message_id": message_id,
            "request_id": request_id,
            "at": datetime.now(UTC).isoformat(),
        }
        log.warning("dead-lettered", topic=topic, offset=offset, reason=exc.slug, request_id=request_id)
        return OutgoingRecord(
            topic=self.topics.name("dlq", partner), value=orjson.dumps(entry), key=key,
            headers=(("request-id", request_id.encode()), ("reason", exc.slug.encode())),
        )
