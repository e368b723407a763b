"""The batch histogram of gateway.observability.metrics: a batch of observations lands in the buckets a
one-at-a-time prometheus_client Histogram would put them in, exported in the same standard shape."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram

from gateway.observability.metrics import LATENCY_BUCKETS, BatchHistogram

VALUES = [0.0, 0.001, 0.005, 0.0051, 0.2, 1.0, 7.5, 30.0, 299.0, 301.0, 1e6]


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in registry.collect() for s in family.samples if not s.name.endswith("_created")}


def test_a_batch_is_exported_as_the_same_observations_one_by_one() -> None:
    batched, single = CollectorRegistry(), CollectorRegistry()
    ours = BatchHistogram("latency_seconds", "Latency.", ("kind",), registry=batched)
    theirs = Histogram("latency_seconds", "Latency.", ["kind"], buckets=LATENCY_BUCKETS, registry=single)
    ours.observe_many(VALUES, ("out",))
    ours.observe_same(0.02, 3, ("status",))
    ours.observe_same(0.02, 0, ("status",))  # nothing
    for value in VALUES:
        theirs.labels("out").observe(value)
    for _ in range(3):
        theirs.labels("status").observe(0.02)
    assert samples(batched).keys() == samples(single).keys()
    for key, value in samples(single).items():
        assert samples(batched)[key] == pytest.approx(value), key
    assert samples(batched)[("latency_seconds_bucket", (("kind", "out"), ("le", "0.005")))] == 3
    assert samples(batched)[("latency_seconds_count", (("kind", "status"),))] == 3
