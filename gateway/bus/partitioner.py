"""Kafka's default partition choice for keyed records, with each key's hash remembered.

aiokafka's :class:`~aiokafka.partitioner.DefaultPartitioner` hashes a record's key with murmur2, as the Java
client does, in pure Python (a loop over the key's 4-byte words) for every record it sends: a few microseconds
per record on the delivery path. The gateway's keys repeat (every message one recipient receives about a person
carries the same record key, :func:`gateway.pipeline.ledger.record_key`), so :class:`KeyHashPartitioner`
remembers the hash of recent keys and chooses exactly the partition the default partitioner chooses; a record
without a key goes to the default partitioner as it is (a random available partition).

The keys remembered are the records' Kafka keys (keyed per-recipient tokens and consent ids, never a person's
identifier), which every consumer of the topic sees anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from aiokafka.partitioner import DefaultPartitioner, murmur2

__all__ = ["KeyHashPartitioner"]

_REMEMBERED_KEYS = 65_536
"""How many distinct keys' hashes are kept (least recently used dropped first): a few megabytes at most."""


@lru_cache(maxsize=_REMEMBERED_KEYS)
def _positive_hash(key: bytes) -> int:
    """murmur2 of ``key`` as Kafka's default partitioner uses it (the sign bit cleared)."""
    return int(murmur2(key)) & 0x7FFFFFFF


class KeyHashPartitioner:
    """A partitioner for :class:`aiokafka.AIOKafkaProducer` that chooses as the default one does."""

    def __init__(self) -> None:
        self._default = DefaultPartitioner()

    def __call__(self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
        """The partition for ``key`` among ``all_partitions`` (sorted by id), as the default partitioner picks it."""
        if not isinstance(key, bytes):  # no key (a random partition), or a mutable buffer that cannot be cached
            return int(self._default(key, all_partitions, available))
        return all_partitions[_positive_hash(key) % len(all_partitions)]
