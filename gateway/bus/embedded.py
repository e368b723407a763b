"""The embedded bus: a durable, SQLite-backed log with topics, partitions, offsets and consumer groups.

It is the single-machine default (demo, one gateway process plus its workers) and passes the same contract
suite as the Kafka bus. One SQLite file holds everything:

- ``topics``: name and partition count (set when the topic is created, never changed afterwards);
- ``partitions``: the next offset of every partition, so offsets are never reused;
- ``records``: topic, partition, offset, key, value, headers (JSON list of ``[name, base64 value]``) and
  append time in milliseconds since the epoch;
- ``group_offsets``: per consumer group, topic and partition, the next offset to read (what was committed).

Durability: WAL journal with ``synchronous=FULL``, so :meth:`EmbeddedBus.publish` returns only after the
appended batch is on disk. A batch is appended in one transaction: all of it or none of it.

Concurrency: several processes may open the same file. Appends take SQLite's write lock
(``BEGIN IMMEDIATE``), so offsets are assigned without gaps or duplicates; readers never block writers
(WAL), and lock waits are bounded by a busy timeout after which :class:`BusUnavailable` (retriable) is raised.
Within a process every connection runs on its own worker thread, so the event loop never blocks on the file.

Consumer groups are deliberately simple: there is no group coordinator and no partition assignment.
One member at a time per group is the supported shape. A second concurrent member of the same group does
not wait or fail: it reads the same partitions from the group's committed offsets, so both members see the
records that neither has committed yet (at-least-once duplicates, which idempotent handlers absorb).
Committed offsets never move backwards, so a slower duplicate member cannot rewind its group.
To share work between several processes, use the Kafka bus.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

from gateway.bus.errors import BusUnavailable, UnknownTopicError
from gateway.bus.port import BusRecord, Headers, OutgoingRecord

__all__ = ["EmbeddedBus", "EmbeddedConsumer", "UnknownTopicError"]

_T = TypeVar("_T")

_SCHEMA_VERSION = 1
_BUSY_TIMEOUT_S = 10.0
"""How long a connection waits for another connection's write lock before giving up (retriable)."""
_RETRIABLE_SQLITE_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL})
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
"""Kafka's rule for topic names, so that a name accepted here is accepted by a broker too."""

_SCHEMA = f"""
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS topics (
    name TEXT PRIMARY KEY,
    partitions INTEGER NOT NULL CHECK (partitions >= 1),
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS partitions (
    topic TEXT NOT NULL REFERENCES topics (name),
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    key BLOB,
    value BLOB NOT NULL,
    headers TEXT NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    PRIMARY KEY (topic, partition, "offset")
);
CREATE TABLE IF NOT EXISTS group_offsets (
    group_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
) WITHOUT ROWID;
PRAGMA user_version = {_SCHEMA_VERSION};
COMMIT;
"""

TopicPartition = tuple[str, int]


class EmbeddedBus:
    """The :class:`~gateway.bus.port.Bus` port on one SQLite file (see the module docstring)."""

    def __init__(self, path: Path, partitions: int = 1, poll_interval_s: float = 0.02) -> None:
        """``partitions`` applies to topics this bus creates; ``poll_interval_s`` is how often a waiting
        consumer looks for records appended by other processes (appends in this process wake it at once)."""
        if partitions < 1:
            raise ValueError("partitions must be at least 1")
        if poll_interval_s <= 0:
            raise ValueError("poll_interval_s must be positive")
        self._path = Path(path)
        self._partitions = partitions
        self._poll_interval_s = poll_interval_s
        self._log: _Log | None = None
        self._topics: dict[str, int] = {}
        self._next_unkeyed: dict[str, int] = {}
        self._appended = _Wakeup()

    @property
    def path(self) -> Path:
        """The SQLite file of the log."""
        return self._path

    async def start(self) -> None:
        """Open (creating if needed) the log file."""
        if self._log is not None:
            return
        log = await _Log.open(self._path)
        try:
            self._topics = await log.run(_load_topics)
        except BaseException:
            await log.close()
            raise
        self._log = log

    async def stop(self) -> None:
        """Close the log file; every published batch is already on disk."""
        log, self._log = self._log, None
        if log is not None:
            await log.close()

    async def check(self, timeout_s: float = 2.0) -> None:
        """Read the log file's topic list; raise :class:`BusUnavailable` if it cannot be read within
        ``timeout_s`` or the bus is not started."""
        if self._log is None:
            raise BusUnavailable("embedded bus log: not open", retriable=True)
        try:
            await asyncio.wait_for(self._log.run(_load_topics), timeout=timeout_s)
        except TimeoutError as exc:
            raise BusUnavailable(f"embedded bus log: no answer within {timeout_s:g} s", retriable=True) from exc

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        """Create the topics that do not exist yet with this bus's partition count."""
        names = list(dict.fromkeys(topics))
        for name in names:
            _check_topic_name(name)
        if not names:
            return
        log = self._require_started()
        self._topics = await log.run(
            partial(_create_topics, names=names, partitions=self._partitions, now_ms=_now_ms())
        )

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        """Append the records in one durable transaction.

        Raises :class:`UnknownTopicError` (and appends nothing) if any topic does not exist.
        """
        if not records:
            return
        log = self._require_started()
        wanted = {record.topic for record in records}
        if not wanted.issubset(self._topics):
            # Another process sharing the file may have created them since we last looked.
            self._topics = await log.run(_load_topics)
            unknown = wanted.difference(self._topics)
            if unknown:
                raise UnknownTopicError(unknown)
        rows = [
            (record.topic, self._partition_for(record), record.key, record.value, _encode_headers(record.headers))
            for record in records
        ]
        await log.run(partial(_append, rows=rows, timestamp_ms=_now_ms()))
        self._appended.notify()

    def consumer(self, group_id: str, topics: Sequence[str]) -> EmbeddedConsumer:
        """A new, not yet started, consumer in ``group_id`` (see the module docstring on groups)."""
        return EmbeddedConsumer(
            self._path, group_id, topics, poll_interval_s=self._poll_interval_s, wakeup=self._appended
        )

    async def partitions(self, topic: str) -> list[int]:
        """The partition numbers of ``topic`` (as created; they never change)."""
        log = self._require_started()
        if topic not in self._topics:
            self._topics = await log.run(_load_topics)
            if topic not in self._topics:
                raise UnknownTopicError([topic])
        return list(range(self._topics[topic]))

    async def group_lag(self, group_id: str, topics: Sequence[str]) -> dict[str, int]:
        """Per topic, records past the group's committed offsets (see :meth:`gateway.bus.port.Bus.group_lag`)."""
        log = self._require_started()
        return await log.run(partial(_group_lag, group_id=group_id, topics=list(topics)))

    async def read(self, topic: str, partition: int, offset: int, max_records: int = 500) -> list[BusRecord]:
        """Records of one partition from ``offset`` on, outside any group (the log never drops records, so
        the first one returned is at ``offset`` whenever that offset was ever written)."""
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        if partition not in await self.partitions(topic):
            raise UnknownTopicError([f"{topic}[{partition}]"])
        log = self._require_started()
        return await log.run(partial(_read_partition, topic=topic, partition=partition, offset=max(offset, 0),
                                     max_records=max_records))

    def _partition_for(self, record: OutgoingRecord) -> int:
        partitions = self._topics[record.topic]
        if record.key is not None:
            # crc32 is stable across processes and Python versions, unlike hash().
            return zlib.crc32(record.key) % partitions
        turn = self._next_unkeyed.get(record.topic, 0)
        self._next_unkeyed[record.topic] = turn + 1
        return turn % partitions

    def _require_started(self) -> _Log:
        if self._log is None:
            raise RuntimeError("EmbeddedBus is not started")
        return self._log


class EmbeddedConsumer:
    """A member of a consumer group on the embedded log.

    Reading starts at the group's committed offsets (the earliest record where none is committed) and then
    continues from what this member has fetched; :meth:`commit` stores those positions for the group.
    """

    def __init__(
        self,
        path: Path,
        group_id: str,
        topics: Sequence[str],
        *,
        poll_interval_s: float = 0.02,
        wakeup: _Wakeup | None = None,
    ) -> None:
        if not group_id:
            raise ValueError("group_id must not be empty")
        self._path = Path(path)
        self._group_id = group_id
        self._topics = tuple(dict.fromkeys(topics))
        for name in self._topics:
            _check_topic_name(name)
        self._poll_interval_s = poll_interval_s
        self._wakeup = wakeup if wakeup is not None else _Wakeup()
        self._log: _Log | None = None
        self._positions: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._turn = 0

    @property
    def group_id(self) -> str:
        """The consumer group this member belongs to."""
        return self._group_id

    async def start(self) -> None:
        """Open the log; positions are read from the group's committed offsets."""
        if self._log is not None:
            return
        self._positions.clear()
        self._committed.clear()
        self._log = await _Log.open(self._path)

    async def stop(self) -> None:
        """Close the log without committing: what was fetched but not committed will be read again."""
        log, self._log = self._log, None
        if log is not None:
            await log.close()

    async def fetch(self, timeout_s: float, max_records: int = 500) -> list[BusRecord]:
        """Up to ``max_records`` records after this member's positions, waiting at most ``timeout_s``."""
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        log = self._require_started()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout_s, 0.0)
        while True:
            # Armed before reading, so an append that lands between the read and the wait still wakes us.
            waiter = self._wakeup.arm()
            try:
                read = await log.run(
                    partial(
                        _read,
                        group_id=self._group_id,
                        topics=self._topics,
                        positions=dict(self._positions),
                        max_records=max_records,
                        turn=self._turn,
                    )
                )
                for tp, offset in read.discovered.items():
                    self._positions.setdefault(tp, offset)
                    self._committed.setdefault(tp, offset)
                if read.records:
                    self._turn += 1
                    for record in read.records:
                        self._positions[(record.topic, record.partition)] = record.offset + 1
                    return read.records
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return []
                await _Wakeup.wait(waiter, min(remaining, self._poll_interval_s))
            finally:
                self._wakeup.disarm(waiter)

    async def commit(self) -> None:
        """Store, for the group, the positions after every record fetched so far."""
        log = self._require_started()
        changed = {tp: offset for tp, offset in self._positions.items() if self._committed.get(tp) != offset}
        if not changed:
            return
        await log.run(partial(_commit, group_id=self._group_id, offsets=changed))
        self._committed.update(changed)

    def assignment(self) -> list[tuple[str, int]]:
        """The (topic, partition) pairs this member has read from so far: every partition of its topics once
        records were found there (the embedded bus has no group coordinator, so nothing is assigned away)."""
        return sorted(self._positions)

    def _require_started(self) -> _Log:
        if self._log is None:
            raise RuntimeError("EmbeddedConsumer is not started")
        return self._log


class _Wakeup:
    """Wakes consumers of this process as soon as a batch is appended, so they need not wait for a poll."""

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()

    def arm(self) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        return waiter

    def disarm(self, waiter: asyncio.Future[None]) -> None:
        self._waiters.discard(waiter)
        if not waiter.done():
            waiter.cancel()

    def notify(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    @staticmethod
    async def wait(waiter: asyncio.Future[None], timeout_s: float) -> None:
        await asyncio.wait({waiter}, timeout=timeout_s)


class _Log:
    """One SQLite connection, used only from its own worker thread (one job at a time, in order)."""

    def __init__(self, connection: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self._connection = connection
        self._executor = executor

    @classmethod
    async def open(cls, path: Path) -> _Log:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedded-bus")
        try:
            connection = await asyncio.get_running_loop().run_in_executor(executor, _connect, path)
        except sqlite3.Error as exc:
            executor.shutdown(wait=False)
            raise _unavailable(exc) from exc
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(connection, executor)

    async def run(self, job: Callable[[sqlite3.Connection], _T]) -> _T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, job, self._connection)
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc

    async def close(self) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._connection.close)
        finally:
            self._executor.shutdown(wait=False)


@dataclass(frozen=True, slots=True)
class _Read:
    records: list[BusRecord]
    discovered: dict[TopicPartition, int]
    """Start positions (committed offset, or 0) of partitions this member had no position for."""


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    try:
        (journal_mode,) = connection.execute("PRAGMA journal_mode = WAL").fetchone()
        if str(journal_mode).lower() != "wal":
            raise BusUnavailable(
                f"embedded bus log {path}: the file system does not support SQLite's WAL journal",
                retriable=False,
            )
        connection.execute("PRAGMA synchronous = FULL")
        (version,) = connection.execute("PRAGMA user_version").fetchone()
        if version > _SCHEMA_VERSION:
            raise BusUnavailable(
                f"embedded bus log {path} has schema version {version}; this gateway knows {_SCHEMA_VERSION}",
                retriable=False,
            )
        if version < _SCHEMA_VERSION:
            connection.executescript(_SCHEMA)
    except BaseException:
        connection.close()
        raise
    return connection


def _in_write_transaction(connection: sqlite3.Connection, job: Callable[[], _T]) -> _T:
    # IMMEDIATE takes the write lock up front, so two writers never both read the same next offset.
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = job()
    except BaseException:
        if connection.in_transaction:
            connection.rollback()
        raise
    connection.execute("COMMIT")
    return result


def _load_topics(connection: sqlite3.Connection) -> dict[str, int]:
    return {name: partitions for name, partitions in connection.execute("SELECT name, partitions FROM topics")}


def _create_topics(connection: sqlite3.Connection, *, names: list[str], partitions: int, now_ms: int) -> dict[str, int]:
    def create() -> dict[str, int]:
        existing = _load_topics(connection)
        for name in names:
            if name in existing:
                continue
            connection.execute(
                "INSERT INTO topics (name, partitions, created_ms) VALUES (?, ?, ?)", (name, partitions, now_ms)
            )
            connection.executemany(
                "INSERT INTO partitions (topic, partition, next_offset) VALUES (?, ?, 0)",
                [(name, partition) for partition in range(partitions)],
            )
            existing[name] = partitions
        return existing

    return _in_write_transaction(connection, create)


def _append(
    connection: sqlite3.Connection,
    *,
    rows: list[tuple[str, int, bytes | None, bytes, str]],
    timestamp_ms: int,
) -> None:
    def append() -> None:
        next_offsets: dict[TopicPartition, int] = {}
        for topic, partition, *_ in rows:
            tp = (topic, partition)
            if tp not in next_offsets:
                (offset,) = connection.execute(
                    "SELECT next_offset FROM partitions WHERE topic = ? AND partition = ?", tp
                ).fetchone()
                next_offsets[tp] = offset
        stored = []
        for topic, partition, key, value, headers in rows:
            offset = next_offsets[(topic, partition)]
            next_offsets[(topic, partition)] = offset + 1
            stored.append((topic, partition, offset, key, value, headers, timestamp_ms))
        connection.executemany(
            'INSERT INTO records (topic, partition, "offset", key, value, headers, timestamp_ms)'
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            stored,
        )
        connection.executemany(
            "UPDATE partitions SET next_offset = ? WHERE topic = ? AND partition = ?",
            [(offset, topic, partition) for (topic, partition), offset in next_offsets.items()],
        )

    _in_write_transaction(connection, append)


def _read(
    connection: sqlite3.Connection,
    *,
    group_id: str,
    topics: tuple[str, ...],
    positions: dict[TopicPartition, int],
    max_records: int,
    turn: int,
) -> _Read:
    if not topics:
        return _Read([], {})
    placeholders = ", ".join("?" for _ in topics)
    connection.execute("BEGIN")  # one snapshot for the whole read
    try:
        ends = {
            (topic, partition): next_offset
            for topic, partition, next_offset in connection.execute(
                f"SELECT topic, partition, next_offset FROM partitions WHERE topic IN ({placeholders})",  # noqa: S608
                topics,
            )
        }
        discovered: dict[TopicPartition, int] = {}
        for tp in ends.keys() - positions.keys():
            row = connection.execute(
                "SELECT next_offset FROM group_offsets WHERE group_id = ? AND topic = ? AND partition = ?",
                (group_id, *tp),
            ).fetchone()
            discovered[tp] = row[0] if row else 0
        positions = {**discovered, **positions}
        ready = sorted(tp for tp, end in ends.items() if end > positions[tp])
        records: list[BusRecord] = []
        # Start at a different partition each time so one busy partition cannot starve the others.
        for index in range(len(ready)):
            if len(records) >= max_records:
                break
            topic, partition = ready[(turn + index) % len(ready)]
            rows = connection.execute(
                'SELECT "offset", key, value, headers, timestamp_ms FROM records'
                ' WHERE topic = ? AND partition = ? AND "offset" >= ? ORDER BY "offset" LIMIT ?',
                (topic, partition, positions[(topic, partition)], max_records - len(records)),
            )
            records.extend(
                BusRecord(
                    topic=topic,
                    partition=partition,
                    offset=offset,
                    key=key,
                    value=value,
                    headers=_decode_headers(headers),
                    timestamp_ms=timestamp_ms,
                )
                for offset, key, value, headers, timestamp_ms in rows
            )
    finally:
        if connection.in_transaction:
            connection.execute("COMMIT")
    return _Read(records, discovered)


def _read_partition(connection: sqlite3.Connection, *, topic: str, partition: int, offset: int,
                    max_records: int) -> list[BusRecord]:
    rows = connection.execute(
        'SELECT "offset", key, value, headers, timestamp_ms FROM records'
        ' WHERE topic = ? AND partition = ? AND "offset" >= ? ORDER BY "offset" LIMIT ?',
        (topic, partition, offset, max_records),
    ).fetchall()
    return [BusRecord(topic=topic, partition=partition, offset=o, key=key, value=value,
                      headers=_decode_headers(headers), timestamp_ms=ts) for o, key, value, headers, ts in rows]


def _commit(connection: sqlite3.Connection, *, group_id: str, offsets: dict[TopicPartition, int]) -> None:
    def commit() -> None:
        connection.executemany(
            "INSERT INTO group_offsets (group_id, topic, partition, next_offset) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (group_id, topic, partition)"
            " DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)",
            [(group_id, topic, partition, offset) for (topic, partition), offset in offsets.items()],
        )

    _in_write_transaction(connection, commit)


def _group_lag(connection: sqlite3.Connection, *, group_id: str, topics: list[str]) -> dict[str, int]:
    lag = dict.fromkeys(topics, 0)
    for topic, behind in connection.execute(
        "SELECT p.topic, sum(p.next_offset - coalesce(g.next_offset, 0)) FROM partitions p"
        " LEFT JOIN group_offsets g ON g.group_id = ? AND g.topic = p.topic AND g.partition = p.partition"
        " GROUP BY p.topic", (group_id,),
    ):
        if topic in lag:
            lag[topic] = max(0, int(behind))
    return lag


def _encode_headers(headers: Headers) -> str:
    return json.dumps(
        [[name, base64.b64encode(value).decode("ascii")] for name, value in headers], separators=(",", ":")
    )


def _decode_headers(encoded: str) -> Headers:
    pairs: Iterable[list[str]] = json.loads(encoded)
    return tuple((name, base64.b64decode(value)) for name, value in pairs)


def _check_topic_name(name: str) -> None:
    if not _TOPIC_NAME.fullmatch(name) or name in {".", ".."}:
        raise ValueError(f"invalid topic name {name!r}: use 1-249 of the characters A-Z a-z 0-9 . _ -")


def _unavailable(exc: sqlite3.Error) -> BusUnavailable:
    code = getattr(exc, "sqlite_errorcode", None)
    retriable = code is not None and (code & 0xFF) in _RETRIABLE_SQLITE_CODES
    return BusUnavailable(f"embedded bus log: {exc}", retriable=retriable)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
