"""Inbound consumer: partner messages produced to ``in.<partner>`` go through the same intake as HTTP.

The topic names the sender (partners are authenticated to Kafka and allowed to write only their own
``in.`` topic). A message that cannot be accepted goes to ``dlq.<partner>`` with a reason and its source
coordinates (not a copy of the payload) and the consumer carries on; when the store is unavailable the
consumer does not commit and retries the same records after a back-off, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson

from gateway.audit.record import KafkaCoordinates
from gateway.bus.errors import BusError
from gateway.bus.port import Bus, BusRecord, OutgoingRecord
from gateway.errors import DependencyUnavailable, GatewayError
from gateway.logging import get_logger
from gateway.pipeline.intake import Intake, Submission
from gateway.settings import TopicSettings

__all__ = ["InboundConsumer"]

log = get_logger(__name__)

_REQUEST_ID_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def _request_id(record: BusRecord) -> str:
    given = record.header("request-id")
    if given and len(given) <= 64 and set(given) <= _REQUEST_ID_OK:
        return given
    return str(uuid.uuid4())


class InboundConsumer:
    """Consumes ``in.<partner>`` topics in consumer group ``group_id`` and feeds the intake."""

    def __init__(self, intake: Intake, bus: Bus, topics: TopicSettings, partners: Sequence[str],
                 group_id: str = "gateway-intake", max_records: int = 200) -> None:
        self.intake = intake
        self.bus = bus
        self.topics = topics
        self.partner_of = {topics.name("in", p): p for p in partners}
        self.group_id = group_id
        self.max_records = max_records

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        consumer = self.bus.consumer(self.group_id, sorted(self.partner_of))
        await consumer.start()
        if ready is not None:
            ready.set()
        try:
            while not stop.is_set():
                records = await consumer.fetch(timeout_s=0.2, max_records=self.max_records)
                if records:
                    await self._handle_until_done(records, stop)
                    await consumer.commit()
        finally:
            await consumer.stop()

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
            )
            try:
                items += [(envelope, submission) for envelope in self.intake.decode(submission)]
            except GatewayError as exc:
                dead.append(self._dead_letter(record, partner, submission.request_id, exc))
        await self.intake.process(items)  # first: a retry after a failed dead-letter publish replays nothing
        if dead:
            await self.bus.publish(dead)

    def _dead_letter(self, record: BusRecord, partner: str, request_id: str, exc: GatewayError) -> OutgoingRecord:
        entry = {
            "reason": exc.slug,
            "title": exc.title,
            "detail": exc.detail,
            "problems": [p.as_dict() for p in exc.problems],
            "source": {"topic": record.topic, "partition": record.partition, "offset": record.offset},
            "message_id": record.header("message-id"),
            "request_id": request_id,
            "at": datetime.now(UTC).isoformat(),
        }
        log.warning("dead-lettered", topic=record.topic, offset=record.offset, reason=exc.slug,
                    request_id=request_id)
        return OutgoingRecord(
            topic=self.topics.name("dlq", partner), value=orjson.dumps(entry), key=record.key,
            headers=(("request-id", request_id.encode()), ("reason", exc.slug.encode())),
        )
