"""The producer's partitioner (:mod:`gateway.bus.partitioner`) chooses exactly as Kafka's default partitioner.

Which partition a key lands in decides the order a recipient reads one person's messages in, and partners'
own producers (Java clients, aiokafka's default) must agree with it: the choice is compared with aiokafka's
:class:`~aiokafka.partitioner.DefaultPartitioner` on many keys, lengths and partition counts, asked twice (the
second answer comes from the remembered hash).
"""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner

from gateway.bus.partitioner import KeyHashPartitioner
from gateway.pipeline.ledger import record_key


def test_every_key_goes_to_the_partition_the_default_partitioner_chooses() -> None:
    rng = random.Random(2026)
    keys = [rng.randbytes(rng.randrange(0, 80)) for _ in range(20_000)]
    keys += [record_key(None, recipient, f"sbj_{n}") for n in range(2_000) for recipient in ("fwa", "aler")]
    keys += [b"", b"a", b"ab", b"abc", b"abcd", b"\xff" * 33, b"cns-1"]
    default, remembering = DefaultPartitioner(), KeyHashPartitioner()
    spread: set[int] = set()
    for count in (1, 2, 3, 7, 12, 50):
        partitions = list(range(count))
        for key in keys:
            expected = default(key, partitions, partitions)
            assert remembering(key, partitions, partitions) == expected
            assert remembering(key, partitions, partitions[:1]) == expected  # availability never moves a key
            spread.add(expected)
    assert spread == set(range(50))


def test_a_record_without_a_key_goes_to_an_available_partition() -> None:
    partitioner = KeyHashPartitioner()
    assert {partitioner(None, [0, 1, 2], [2]) for _ in range(50)} == {2}
    assert {partitioner(None, [0, 1, 2], []) for _ in range(200)} == {0, 1, 2}


def test_a_mutable_key_is_hashed_without_being_remembered() -> None:
    partitions = list(range(7))
    key = bytearray(b"record-key")
    assert KeyHashPartitioner()(key, partitions, partitions) == DefaultPartitioner()(bytes(key), partitions, partitions)
