"""The Kafka bus: the :class:`~gateway.bus.port.Bus` port on Apache Kafka through aiokafka.

Publishing uses one idempotent producer (``enable_idempotence=True``, ``acks="all"``): the records of a batch are
built into one aiokafka record batch per partition, all handed to the producer first, and only then are the
acknowledgements awaited, so a batch travels as a few pipelined produce requests instead of one round trip per
record. The producer partitions as Kafka's default
partitioner does, hashing the key (murmur2, as the Java client does), so one subject's records stay in one
partition, in order; it remembers the hash of keys it has seen (:mod:`gateway.bus.partitioner`).

Topics are created only by :meth:`KafkaBus.ensure_topics` (brokers run with ``auto.create.topics.enable=false``).
Before the first send to a topic the bus checks the cluster metadata (a full metadata request, which never
auto-creates) and raises :class:`UnknownTopicError` at once for a missing topic, instead of letting the producer
wait ``request_timeout_ms`` for metadata that will never come; topics found are remembered.

Consumers join a Kafka consumer group with auto-commit off and ``auto_offset_reset="earliest"``; they commit
explicitly after the records they fetched are handled (at-least-once). Several gateway processes in one group
share the partitions. A commit the group refuses because it rebalanced meanwhile (aiokafka's
``CommitFailedError``, or ``IllegalStateError`` when the member holds no assignment at that moment) is raised as
:class:`CommitFailed`: as aiokafka intends, the caller keeps fetching, the next fetch rejoins the group and the
records since the last commit are delivered again to whichever member now owns their partition.

Every aiokafka error is translated at this boundary into :class:`BusUnavailable` with a ``retriable`` flag; a
refused login or a refused topic is not retriable (retrying cannot fix a credential or an ACL).

Every client the bus opens (producer, admin, consumers) authenticates the same way, as :class:`KafkaSecurity`
says: no authentication by default (``PLAINTEXT``), or SASL (SCRAM-SHA-512 by default) over ``SASL_PLAINTEXT``
or TLS (``SASL_SSL``). The broker then knows which principal is speaking and its ACLs decide what it may do
(:mod:`gateway.bus.acls` says which grants the gateway and each partner need).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NoBrokersAvailable,
    NoError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
    for_code,
)
from aiokafka.helpers import create_ssl_context
from pydantic import SecretStr

from gateway.bus.errors import BusUnavailable, CommitFailed, UnknownTopicError
from gateway.bus.partitioner import KeyHashPartitioner
from gateway.bus.port import BusRecord, OutgoingRecord

__all__ = ["KafkaBus", "KafkaConsumer", "KafkaSecurity"]

SecurityProtocol = Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]

_LINGER_MS = 0
"""Send at once: a batch's records are all handed to the producer before its sender task runs, so they share
requests anyway, and lingering would only delay a lone message (5 ms added to every single referral)."""
_MAX_BATCH_BYTES = 512 * 1024
"""Largest record batch per partition. aiokafka sends one produce request at a time to a broker, with one batch per
partition, and its default batch of 16 KiB made a delivered batch of 200 referrals (about 60 KiB per partition)
wait for four request round trips in turn, each acknowledged by all in-sync replicas; 512 KiB holds a whole
delivered batch in one request and stays under the broker's default 1 MiB message limit (``message.max.bytes``)."""
_METADATA_POLL_S = 0.1


@dataclass(frozen=True)
class KafkaSecurity:
    """How every client of the bus authenticates to the brokers."""

    protocol: SecurityProtocol = "PLAINTEXT"
    """``PLAINTEXT``: no authentication (a broker without listeners for SASL); ``SASL_PLAINTEXT``: SASL on a
    plain connection (loopback or a trusted network only); ``SASL_SSL``: SASL inside TLS."""
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    """The SASL mechanism; SCRAM never sends the password itself."""
    username: str | None = None
    """The principal's name (``User:<username>`` in the broker's ACLs)."""
    password: SecretStr | None = None
    """The principal's password; kept out of ``repr`` and logs."""
    ssl_cafile: Path | None = None
    """CA certificates that sign the brokers' certificates (``SASL_SSL``); the system's store when unset."""

    def __post_init__(self) -> None:
        if self.protocol.startswith("SASL_") and (not self.username or self.password is None):
            raise ValueError(f"{self.protocol} needs a SASL username and password")

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.protocol.startswith("SASL_"):
            assert self.password is not None  # checked in __post_init__
            options.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.username,
                sasl_plain_password=self.password.get_secret_value(),
            )
        if self.protocol == "SASL_SSL":
            options["ssl_context"] = create_ssl_context(cafile=str(self.ssl_cafile) if self.ssl_cafile else None)
        return options


class KafkaBus:
    """The bus on a Kafka cluster (see the module docstring)."""

    def __init__(
        self,
        bootstrap_servers: str,
        client_id: str,
        partitions: int = 3,
        replication_factor: int = 1,
        request_timeout_ms: int = 30000,
        max_poll_interval_ms: int = 300000,
        security: KafkaSecurity | None = None,
        max_batch_bytes: int = _MAX_BATCH_BYTES,
    ) -> None:
        """``partitions`` and ``replication_factor`` apply to topics this bus creates; ``max_poll_interval_ms``
        is how long a consumer may take over one batch before the group counts it gone and rebalances;
        ``security`` says how to authenticate (none by default); ``max_batch_bytes`` is the producer's largest
        record batch per partition (``bench/publish_batch.py`` compares it with aiokafka's default)."""
        if partitions < 1:
            raise ValueError("partitions must be at least 1")
        if replication_factor < 1:
            raise ValueError("replication_factor must be at least 1")
        if request_timeout_ms < 1:
            raise ValueError("request_timeout_ms must be positive")
        if max_poll_interval_ms < 1:
            raise ValueError("max_poll_interval_ms must be positive")
        self._bootstrap_servers = bootstrap_servers
        self._client_id = client_id
        self._max_poll_interval_ms = max_poll_interval_ms
        self._partitions = partitions
        self._replication_factor = replication_factor
        self._request_timeout_ms = request_timeout_ms
        self._security = security or KafkaSecurity()
        self._max_batch_bytes = max_batch_bytes
        self._producer: Any = None
        self._partitioner = KeyHashPartitioner()
        self._known_topics: set[str] = set()
        self._offsets: tuple[Any, Any] | None = None
        """(admin client, consumer outside any group) that :meth:`group_lag` keeps open between calls."""

    async def start(self) -> None:
        """Connect the idempotent producer."""
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap_servers,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=_LINGER_MS,
            max_batch_size=self._max_batch_bytes,
            partitioner=self._partitioner,
            request_timeout_ms=self._request_timeout_ms,
            **self._security.client_options(),
        )
        try:
            await producer.start()
        except BaseException as exc:
            await producer.stop()
            if isinstance(exc, KafkaError):
                raise _unavailable(exc) from exc
            raise
        self._producer = producer

    async def stop(self) -> None:
        """Flush what is pending and disconnect."""
        producer, self._producer = self._producer, None
        self._known_topics.clear()
        await self._close_offsets()
        if producer is not None:
            await producer.stop()

    async def check(self, timeout_s: float = 2.0) -> None:
        """Ask the cluster for its metadata (a request to a live broker, never served from a cache); raise
        :class:`BusUnavailable` if no broker answers within ``timeout_s`` or the bus is not started."""
        if self._producer is None:
            raise BusUnavailable("Kafka: the producer is not started", retriable=True)
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), timeout=timeout_s)
        except (TimeoutError, KafkaError) as exc:
            raise BusUnavailable(f"Kafka: no broker answered within {timeout_s:g} s ({type(exc).__name__})",
                                 retriable=True) from exc

    async def ensure_topics(self, topics: Sequence[str]) -> None:
        """Create the missing topics and return once the cluster metadata shows a leader for every partition."""
        names = list(dict.fromkeys(topics))
        if not names:
            return
        producer = self._require_started()
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self._bootstrap_servers,
            client_id=self._client_id,
            request_timeout_ms=self._request_timeout_ms,
            **self._security.client_options(),
        )
        try:
            await admin.start()
            response = await admin.create_topics(
                [NewTopic(name, self._partitions, self._replication_factor) for name in names],
                timeout_ms=self._request_timeout_ms,
            )
        except KafkaError as exc:
            raise _unavailable(exc) from exc
        finally:
            await admin.close()
        failures: list[str] = []
        retriable = True
        for entry in response.topic_errors:
            topic, code = entry[0], entry[1]
            error_type = for_code(code)
            if error_type is NoError or error_type is TopicAlreadyExistsError:
                continue
            message = entry[2] if len(entry) > 2 and entry[2] else error_type.__name__
            failures.append(f"{topic}: {message}")
            retriable = retriable and bool(error_type.retriable)
        if failures:
            raise BusUnavailable("could not create topics: " + "; ".join(failures), retriable=retriable)
        await self._wait_for_leaders(producer, names)

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        """Send every record, then wait until all are acknowledged by all in-sync replicas.

        Records of one batch are not atomic: on an error some may have been written (the caller retries the
        whole batch, and consumers deduplicate by message id).
        """
        if not records:
            return
        producer = self._require_started()
        topics = {record.topic for record in records}
        await self._check_topics(producer, topics)
        futures: list[asyncio.Future[Any]] = []
        send_error: BaseException | None = None
        try:
            for (topic, partition), batch in await self._record_batches(producer, records):
                futures.append(await producer.send_batch(batch, topic, partition=partition))
        except (TimeoutError, KafkaError) as exc:
            send_error = exc
        # Await what was already queued even after a failed send, so no acknowledgement goes unobserved.
        results = await asyncio.gather(*futures, return_exceptions=True)
        errors = [result for result in results if isinstance(result, BaseException)]
        if send_error is not None:
            errors.insert(0, send_error)
        if not errors:
            return
        first = errors[0]
        if isinstance(first, UnknownTopicOrPartitionError):
            # Perhaps deleted since we checked: look again before the next publish.
            self._known_topics.difference_update(topics)
        if isinstance(first, (KafkaError, TimeoutError)):
            raise _unavailable(first) from first
        raise first

    async def _record_batches(self, producer: Any, records: Sequence[OutgoingRecord]
                              ) -> list[tuple[tuple[str, int], Any]]:
        """The records as aiokafka record batches, one per partition (more if one fills up), each partition's
        records in the order given, partitioned as :meth:`AIOKafkaProducer.send` partitions them (the
        producer's :class:`KeyHashPartitioner` over the topic's partitions). Handing the producer a built batch
        costs one future and one queue entry per partition instead of per record."""
        partitioner = self._partitioner
        open_batches: dict[tuple[str, int], Any] = {}
        built: list[tuple[tuple[str, int], Any]] = []
        partitions: dict[str, tuple[list[int], list[int]]] = {}
        for record in records:
            found = partitions.get(record.topic)
            if found is None:
                every = sorted(await producer.partitions_for(record.topic))
                found = partitions[record.topic] = (
                    every, sorted(producer.client.cluster.available_partitions_for_topic(record.topic)))
            tp = (record.topic, partitioner(record.key, *found))
            batch = open_batches.get(tp)
            if batch is None:
                batch = open_batches[tp] = producer.create_batch()
                built.append((tp, batch))
            headers = list(record.headers)
            if batch.append(key=record.key, value=record.value, timestamp=None, headers=headers) is None:
                batch = open_batches[tp] = producer.create_batch()  # full: the next one follows it in order
                built.append((tp, batch))
                if batch.append(key=record.key, value=record.value, timestamp=None, headers=headers) is None:
                    raise MessageSizeTooLargeError(f"a record of {len(record.value)} bytes does not fit a batch")
        return built

    def consumer(self, group_id: str, topics: Sequence[str]) -> KafkaConsumer:
        """A new, not yet started, member of the Kafka consumer group ``group_id``."""
        return KafkaConsumer(
            bootstrap_servers=self._bootstrap_servers,
            client_id=self._client_id,
            group_id=group_id,
            topics=topics,
            request_timeout_ms=self._request_timeout_ms,
            max_poll_interval_ms=self._max_poll_interval_ms,
            security=self._security,
        )

    async def partitions(self, topic: str) -> list[int]:
        """The partition numbers of ``topic`` from fresh cluster metadata."""
        producer = self._require_started()
        try:
            metadata = await producer.client.fetch_all_metadata()
        except (TimeoutError, KafkaError) as exc:
            raise BusUnavailable(f"Kafka metadata unavailable: {exc!r}", retriable=True) from exc
        found = metadata.partitions_for_topic(topic)
        if not found:
            raise UnknownTopicError([topic])
        return sorted(found)

    async def read(self, topic: str, partition: int, offset: int, max_records: int = 500) -> list[BusRecord]:
        """Records of one partition from ``offset`` on, through a consumer outside any group (assigned the
        partition, never committing): it starts at the earliest record still retained when ``offset`` is older."""
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        if partition not in await self.partitions(topic):
            raise UnknownTopicError([f"{topic}[{partition}]"])
        tp = TopicPartition(topic, partition)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap_servers, client_id=self._client_id, group_id=None,
            enable_auto_commit=False, auto_offset_reset="earliest", request_timeout_ms=self._request_timeout_ms,
            **self._security.client_options(),
        )
        try:
            await consumer.start()
            consumer.assign([tp])
            first = (await consumer.beginning_offsets([tp]))[tp]
            end = (await consumer.end_offsets([tp]))[tp]
            start = max(offset, first)
            if start >= end:
                return []
            consumer.seek(tp, start)
            records: list[BusRecord] = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._request_timeout_ms / 1000
            while len(records) < max_records and loop.time() < deadline:
                batch = await consumer.getmany(tp, timeout_ms=200, max_records=max_records - len(records))
                records += [_record(message) for message in batch.get(tp, []) if message.offset >= start]
                if await consumer.position(tp) >= end:
                    break
            return records
        except KafkaError as exc:
            raise _unavailable(exc) from exc
        finally:
            await consumer.stop()

    async def group_lag(self, group_id: str, topics: Sequence[str]) -> dict[str, int]:
        """Per topic, records past the group's committed offsets (see :meth:`gateway.bus.port.Bus.group_lag`):
        the group's offsets from its coordinator, the end offsets from the partition leaders, through two
        clients kept open for the next call (a sample every few seconds should not log in each time)."""
        try:
            admin, reader = await self._offset_clients()
            committed = await admin.list_consumer_group_offsets(group_id)
            metadata = await self._require_started().client.fetch_all_metadata()
            partitions = [TopicPartition(t, p) for t in topics for p in (metadata.partitions_for_topic(t) or ())]
            ends = await reader.end_offsets(partitions)
            firsts = await reader.beginning_offsets([tp for tp in partitions if tp not in committed])
        except (TimeoutError, KafkaError) as exc:
            await self._close_offsets()
            raise _unavailable(exc) if isinstance(exc, KafkaError) else BusUnavailable(
                "Kafka: offsets unavailable (timeout)", retriable=True) from exc
        lag = dict.fromkeys(topics, 0)
        for tp, end in ends.items():
            start = committed[tp].offset if tp in committed and committed[tp].offset >= 0 else firsts.get(tp, 0)
            lag[tp.topic] += max(0, end - start)
        return lag

    async def _offset_clients(self) -> tuple[Any, Any]:
        if self._offsets is None:
            options = dict(bootstrap_servers=self._bootstrap_servers, client_id=self._client_id,
                           request_timeout_ms=self._request_timeout_ms, **self._security.client_options())
            admin = AIOKafkaAdminClient(**options)
            reader = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **options)
            try:
                await admin.start()
                await reader.start()
            except BaseException:
                await admin.close()
                await reader.stop()
                raise
            self._offsets = (admin, reader)
        return self._offsets

    async def _close_offsets(self) -> None:
        offsets, self._offsets = self._offsets, None
        if offsets is not None:
            admin, reader = offsets
            try:
                await reader.stop()
            finally:
                await admin.close()

    async def _check_topics(self, producer: Any, topics: Iterable[str]) -> None:
        missing = set(topics).difference(self._known_topics)
        if not missing:
            return
        try:
            metadata = await producer.client.fetch_all_metadata()
        except (TimeoutError, KafkaError) as exc:
            raise BusUnavailable(f"Kafka metadata unavailable: {exc!r}", retriable=True) from exc
        present: set[str] = metadata.topics()
        self._known_topics.update(missing.intersection(present))
        unknown = missing.difference(present)
        if unknown:
            raise UnknownTopicError(unknown)

    async def _wait_for_leaders(self, producer: Any, names: list[str]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._request_timeout_ms / 1000
        pending = list(names)
        while True:
            try:
                metadata = await producer.client.fetch_all_metadata()
            except (TimeoutError, KafkaError) as exc:
                raise BusUnavailable(f"Kafka metadata unavailable: {exc!r}", retriable=True) from exc
            pending = [name for name in pending if not _has_all_leaders(metadata, name)]
            if not pending:
                self._known_topics.update(names)
                return
            if loop.time() >= deadline:
                raise BusUnavailable(
                    "topics created but without partition leaders in time: " + ", ".join(pending),
                    retriable=True,
                )
            await asyncio.sleep(_METADATA_POLL_S)

    def _require_started(self) -> Any:
        if self._producer is None:
            raise RuntimeError("KafkaBus is not started")
        return self._producer


class KafkaConsumer:
    """A member of a Kafka consumer group (auto-commit off, earliest offset when the group has none)."""

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        client_id: str,
        group_id: str,
        topics: Sequence[str],
        request_timeout_ms: int = 30000,
        max_poll_interval_ms: int = 300000,
        security: KafkaSecurity | None = None,
    ) -> None:
        if not group_id:
            raise ValueError("group_id must not be empty")
        self._bootstrap_servers = bootstrap_servers
        self._client_id = client_id
        self._group_id = group_id
        self._topics = tuple(dict.fromkeys(topics))
        self._request_timeout_ms = request_timeout_ms
        self._max_poll_interval_ms = max_poll_interval_ms
        self._security = security or KafkaSecurity()
        self._consumer: Any = None

    @property
    def group_id(self) -> str:
        """The consumer group this member belongs to."""
        return self._group_id

    async def start(self) -> None:
        """Connect and subscribe; the group assigns partitions during the first fetches."""
        if self._consumer is not None:
            return
        consumer = AIOKafkaConsumer(
            *self._topics,
            bootstrap_servers=self._bootstrap_servers,
            client_id=self._client_id,
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=self._request_timeout_ms,
            max_poll_interval_ms=self._max_poll_interval_ms,
            **self._security.client_options(),
        )
        try:
            await consumer.start()
        except BaseException as exc:
            await consumer.stop()
            if isinstance(exc, KafkaError):
                raise _unavailable(exc) from exc
            raise
        self._consumer = consumer

    async def stop(self) -> None:
        """Leave the group without committing."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def fetch(self, timeout_s: float, max_records: int = 500) -> list[BusRecord]:
        """Up to ``max_records`` records, grouped by partition in offset order, waiting at most ``timeout_s``."""
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        consumer = self._require_started()
        try:
            batches = await consumer.getmany(timeout_ms=max(0, round(timeout_s * 1000)), max_records=max_records)
        except KafkaError as exc:
            raise _unavailable(exc) from exc
        records: list[BusRecord] = []
        for tp in sorted(batches, key=lambda tp: (tp.topic, tp.partition)):
            records.extend(_record(message) for message in batches[tp])
        return records

    async def commit(self) -> None:
        """Commit the positions after every record fetched so far."""
        consumer = self._require_started()
        try:
            await consumer.commit()
        except (CommitFailedError, IllegalStateError) as exc:
            raise CommitFailed(f"Kafka group {self._group_id} rebalanced before the commit: {exc!r}") from exc
        except KafkaError as exc:
            raise _unavailable(exc) from exc

    def assignment(self) -> list[tuple[str, int]]:
        """The (topic, partition) pairs the group gives this member now; empty before it has joined, while
        a rebalance is under way, or when the group has more members than partitions."""
        if self._consumer is None:
            return []
        return sorted((tp.topic, tp.partition) for tp in self._consumer.assignment())

    def _require_started(self) -> Any:
        if self._consumer is None:
            raise RuntimeError("KafkaConsumer is not started")
        return self._consumer


def _record(message: Any) -> BusRecord:
    return BusRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value if message.value is not None else b"",
        headers=tuple((name, bytes(value)) for name, value in message.headers),
        timestamp_ms=message.timestamp,
    )


def _has_all_leaders(metadata: Any, topic: str) -> bool:
    partitions = metadata.partitions_for_topic(topic)
    available = metadata.available_partitions_for_topic(topic)
    return bool(partitions) and available == partitions


_TRANSIENT = (KafkaTimeoutError, KafkaConnectionError, NoBrokersAvailable, TimeoutError)


def _unavailable(exc: BaseException) -> BusUnavailable:
    # aiokafka leaves a client-side timeout non-retriable; for the gateway it is the textbook transient error.
    retriable = isinstance(exc, _TRANSIENT) or bool(getattr(exc, "retriable", False))
    return BusUnavailable(f"Kafka: {exc!r}", retriable=retriable)
