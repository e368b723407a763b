"""Dead-letter re-drive (OpenHIM's "re-run"): list the entries of ``dlq.<partner>``, show one, and put a
dead-lettered message back through the intake once its cause is fixed (a code list updated, a consent recorded).

A dead-letter entry keeps no copy of the payload, only the reason and the source coordinates
(:meth:`gateway.pipeline.consumer.InboundConsumer._dead_letter_entry`), so a replay reads the original record
back from its source topic, partition and offset (:meth:`gateway.bus.port.Bus.read`); Kafka keeps ``in.``
topics for their retention, and a record already deleted is reported as :class:`SourceGone`, never guessed.

An entry's id is where it lives on the bus: ``<partner>:<partition>:<offset>`` of ``dlq.<partner>``, stable
and unique without any table of its own.

A replay is idempotent: the intake's replay guard absorbs a message id already decided (a second replay, or a
message that went through after all), so nothing is decided twice. Each replay (not a dry run) writes a
``dead-letter-replay`` audit record naming who asked and what came of it (:func:`ledger.dead_letter_replay_record`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from gateway.audit.record import KafkaCoordinates
from gateway.bus.errors import UnknownTopicError
from gateway.bus.port import Bus, BusRecord
from gateway.errors import GatewayError, InputError, NotFound
from gateway.pipeline import ledger
from gateway.pipeline.intake import Intake, Submission
from gateway.settings import TopicSettings

__all__ = ["DeadLetter", "DeadLetterNotFound", "Redrive", "Replay", "ReplayOutcome", "SourceGone"]

ReplayOutcome = Literal["decided", "already-decided", "still-invalid", "source-gone", "would-decide"]
"""``would-decide`` only for a dry run: the source decodes now and its message ids are not yet decided."""

_ID = re.compile(r"(?P<partner>[a-z0-9][a-z0-9-]{0,63}):(?P<partition>\d{1,6}):(?P<offset>\d{1,19})")
_PAGE = 500


class DeadLetterNotFound(NotFound):
    """No dead-letter entry with that id."""

    slug = "dead-letter-not-found"
    title = "Dead-letter entry not found"


class SourceGone(GatewayError):
    """The record a dead-letter entry points to is no longer on its source topic (retention ran out), or the
    message came over HTTP and was never on the bus."""

    status_code = 410
    slug = "source-gone"
    title = "The dead-lettered message is no longer available"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One entry of ``dlq.<partner>``, as the consumer wrote it."""

    id: str
    """``<partner>:<partition>:<offset>`` of the entry on ``dlq.<partner>``."""
    partner: str
    reason: str
    """The error's problem slug, e.g. ``contract-violation``."""
    title: str
    detail: str
    problems: tuple[dict[str, Any], ...]
    source: KafkaCoordinates | None
    """Where the original record is; None for a message that never was on the bus."""
    message_id: str | None
    request_id: str | None
    at: str | None
    """When it was dead-lettered (ISO 8601)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "partner": self.partner, "reason": self.reason, "title": self.title,
            "detail": self.detail, "problems": list(self.problems),
            "source": self.source.model_dump() if self.source else None, "message_id": self.message_id,
            "request_id": self.request_id, "at": self.at,
        }


@dataclass(frozen=True, slots=True)
class Replay:
    """What a replay of one entry did (or, for a dry run, would do)."""

    entry: DeadLetter
    outcome: ReplayOutcome
    message_ids: tuple[str, ...] = ()
    states: dict[str, str] = field(default_factory=dict)
    """Message id -> state after the replay (``forwarded``, ``denied``, ...)."""
    detail: str | None = None
    """Why it could not go through (still invalid, source gone); never payload content."""

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.entry.id, "outcome": self.outcome, "message_ids": list(self.message_ids),
                "states": self.states, "detail": self.detail}


class Redrive:
    """Reads dead-letter entries and replays them through ``intake`` (see the module docstring)."""

    def __init__(self, bus: Bus, intake: Intake, topics: TopicSettings, partners: Sequence[str], instance_id: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.bus = bus
        self.intake = intake
        self.topics = topics
        self.partners = tuple(sorted(partners))
        self.instance_id = instance_id
        self.clock = clock

    def _partner(self, partner: str) -> str:
        if partner not in self.partners:
            raise DeadLetterNotFound(f"no partner {partner!r}; the partners are {', '.join(self.partners)}")
        return partner

    async def entries(self, partner: str | None = None, limit: int | None = None) -> list[DeadLetter]:
        """Entries of one partner's dead-letter topic (every partner's if None), oldest first per partition."""
        found: list[DeadLetter] = []
        for name in [self._partner(partner)] if partner else self.partners:
            topic = self.topics.name("dlq", name)
            try:
                partitions = await self.bus.partitions(topic)
            except UnknownTopicError:
                continue
            for partition in partitions:
                offset = 0
                while limit is None or len(found) < limit:
                    page = await self.bus.read(topic, partition, offset, _PAGE)
                    if not page:
                        break
                    found += [_entry(name, record) for record in page]
                    offset = page[-1].offset + 1
        return found[:limit] if limit is not None else found

    async def entry(self, entry_id: str) -> DeadLetter:
        """The entry ``entry_id``; :class:`DeadLetterNotFound` if there is none."""
        match = _ID.fullmatch(entry_id)
        if match is None:
            raise DeadLetterNotFound(f"{entry_id!r} is not a dead-letter id: write <partner>:<partition>:<offset>, "
                                     "as `gateway dlq list` prints it")
        partner = self._partner(match["partner"])
        partition, offset = int(match["partition"]), int(match["offset"])
        try:
            records = await self.bus.read(self.topics.name("dlq", partner), partition, offset, 1)
        except UnknownTopicError:
            records = []
        if not records or records[0].offset != offset:
            raise DeadLetterNotFound(f"no dead-letter entry {entry_id}")
        return _entry(partner, records[0])

    async def replay(self, entry_id: str, requested_by: str, *, dry_run: bool = False) -> Replay:
        """Put the entry's message back through the intake; audited unless ``dry_run``."""
        return await self.replay_entry(await self.entry(entry_id), requested_by, dry_run=dry_run)

    async def replay_all(self, partner: str, requested_by: str, *, dry_run: bool = False) -> list[Replay]:
        """Replay every entry of ``partner``'s dead-letter topic, oldest first."""
        return [await self.replay_entry(entry, requested_by, dry_run=dry_run)
                for entry in await self.entries(partner)]

    async def replay_entry(self, entry: DeadLetter, requested_by: str, *, dry_run: bool = False) -> Replay:
        request_id = str(uuid.uuid4())
        result = await self._replay(entry, request_id, dry_run)
        if not dry_run:
            record = ledger.dead_letter_replay_record(
                entry.id, entry.partner, requested_by, result.outcome, result.message_ids, entry.source,
                self.instance_id, request_id, self.clock())
            async with self.intake.store.transaction() as tx:
                await tx.append_audit([record])
        return result

    async def _replay(self, entry: DeadLetter, request_id: str, dry_run: bool) -> Replay:
        source = await self._source(entry)
        if isinstance(source, str):
            return Replay(entry, "source-gone", detail=source)
        submission = Submission(
            sender=entry.partner, sender_role="system", raw=source.value,
            content_type=source.header("content-type") or "application/json", request_id=request_id,
            client_id=f"kafka:{entry.partner}",
            kafka=KafkaCoordinates(topic=source.topic, partition=source.partition, offset=source.offset),
        )
        try:
            envelopes = self.intake.decode(submission)
        except InputError as exc:
            return Replay(entry, "still-invalid", detail=f"{exc.slug}: {exc.title}")
        ids = tuple(e.message_id for e in envelopes)
        if dry_run:
            async with self.intake.store.transaction() as tx:
                known = await tx.messages_many({(e.sender, e.message_id) for e in envelopes})
            return Replay(entry, "already-decided" if len(known) == len(envelopes) else "would-decide", ids,
                          {key[1]: status.state for key, status in known.items()})
        started = self.clock()
        statuses = await self.intake.process([(envelope, submission) for envelope in envelopes])
        fresh = any(status.received_at >= started for status in statuses)
        return Replay(entry, "decided" if fresh else "already-decided", ids,
                      {status.message_id: status.state for status in statuses})

    async def _source(self, entry: DeadLetter) -> BusRecord | str:
        """The original record, or why it cannot be had."""
        source = entry.source
        if source is None:
            return "the message came over HTTP and was never on the bus: ask the partner to send it again"
        try:
            records = await self.bus.read(source.topic, source.partition, source.offset, 1)
        except UnknownTopicError:
            records = []
        if not records or records[0].offset != source.offset:
            return (f"{source.topic}[{source.partition}] no longer holds offset {source.offset} (the topic's "
                    "retention removed it): ask the partner to send the message again")
        return records[0]


def _entry(partner: str, record: BusRecord) -> DeadLetter:
    try:
        body = orjson.loads(record.value)
    except orjson.JSONDecodeError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    src = body.get("source") or {}
    source = None
    if isinstance(src, dict) and src.get("topic") and int(src.get("partition", -1)) >= 0:
        source = KafkaCoordinates(topic=str(src["topic"]), partition=int(src["partition"]),
                                  offset=int(src["offset"]))
    return DeadLetter(
        id=f"{partner}:{record.partition}:{record.offset}", partner=partner,
        reason=str(body.get("reason") or record.header("reason") or "unknown"),
        title=str(body.get("title") or ""), detail=str(body.get("detail") or ""),
        problems=tuple(p for p in body.get("problems") or () if isinstance(p, dict)), source=source,
        message_id=body.get("message_id"), request_id=body.get("request_id"), at=body.get("at"),
    )
