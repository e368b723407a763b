"""The bus port: what the gateway needs from a log-structured message bus.

Two implementations stand behind it and pass one contract suite (``tests/contract/test_bus_contract.py``):
:mod:`gateway.bus.kafka` (aiokafka, for production) and :mod:`gateway.bus.embedded` (a durable SQLite-backed
log with offsets and consumer groups, for a single machine and the demo).

Delivery is at least once: a consumer commits after it has durably handled what it fetched, so a crash
re-delivers; handlers are idempotent (message ids are deduplicated in the store).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Bus", "BusConsumer", "BusRecord", "OutgoingRecord"]

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """A record to publish."""

    topic: str
    """Destination topic, e.g. ``out.fwa``."""
    value: bytes
    """Serialised message (JSON bytes)."""
    key: bytes | None = None
    """Partitioning key: the subject pseudonym, so one person's events stay ordered."""
    headers: Headers = field(default_factory=tuple)
    """Message id, correlation id, request id, schema version, purpose."""


@dataclass(frozen=True, slots=True)
class BusRecord:
    """A record read from the bus."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers
    timestamp_ms: int
    """Broker (or embedded log) append time, milliseconds since the epoch."""

    def header(self, name: str) -> str | None:
        """First header called ``name`` decoded as UTF-8, or None."""
        for key, value in self.headers:
            if key == name:
                return value.decode("utf-8", errors="replace")
        return None


class BusConsumer(Protocol):
    """A member of a consumer group reading some topics."""

    async def start(self) -> None:
        """Join the group; reading starts at the committed offset, or the earliest one if none."""

    async def stop(self) -> None:
        """Leave the group without committing."""

    async def fetch(self, timeout_s: float, max_records: int = 500) -> list[BusRecord]:
        """Up to ``max_records`` records, waiting at most ``timeout_s`` for the first one."""

    async def commit(self) -> None:
        """Commit the positions after every record returned so far by :meth:`fetch`.

        Raises :class:`~gateway.bus.errors.CommitFailed` when the group rebalanced since those records were
        fetched: they will be delivered again, and the caller simply keeps fetching."""

    def assignment(self) -> list[tuple[str, int]]:
        """The (topic, partition) pairs this member reads now (empty before it joined its group)."""


class Bus(Protocol):
    """A log-structured bus with topics, keys, headers and consumer groups."""

    async def start(self) -> None:
        """Connect (idempotent producer for Kafka; open the log file for the embedded bus)."""

    async def stop(self) -> None:
        """Flush and disconnect."""

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        """Create the topics that do not exist yet (Kafka runs with auto-creation off)."""

    async def check(self, timeout_s: float = 2.0) -> None:
        """Return if the bus answers now (for readiness); raise :class:`~gateway.bus.errors.BusUnavailable`
        if it does not within ``timeout_s``, or was never started."""

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        """Append the records and return once every one is acknowledged (acks=all for Kafka)."""

    def consumer(self, group_id: str, topics: Sequence[str]) -> BusConsumer:
        """A new, not yet started, consumer in ``group_id``."""

    async def partitions(self, topic: str) -> list[int]:
        """The partition numbers of ``topic``; raises :class:`~gateway.bus.errors.UnknownTopicError` if it
        does not exist."""

    async def group_lag(self, group_id: str, topics: Sequence[str]) -> dict[str, int]:
        """Per topic, how many records the group has not committed yet (end offset minus committed offset,
        summed over the partitions; a partition the group never committed counts from its first record)."""

    async def read(self, topic: str, partition: int, offset: int, max_records: int = 500) -> list[BusRecord]:
        """Up to ``max_records`` records of one partition from ``offset`` on, in offset order, outside any
        consumer group (no position is committed). Records before ``offset`` are never returned; the first
        one returned is later than ``offset`` when that record is gone (Kafka's retention) or never held one
        (a compacted topic), and the list is empty at the end of the partition. Dead-letter re-drive reads a
        dead-lettered message back from its source coordinates this way. Raises
        :class:`~gateway.bus.errors.UnknownTopicError` for a topic (or partition) that does not exist."""
