"""The message bus: the port the pipeline publishes to and consumes from, and its two implementations.

- :mod:`gateway.bus.port`: :class:`Bus`, :class:`BusConsumer` and the record types;
- :mod:`gateway.bus.embedded`: :class:`EmbeddedBus`, a durable SQLite-backed log, the single-machine default;
- :mod:`gateway.bus.kafka`: :class:`KafkaBus`, Apache Kafka through aiokafka, how the gateway scales out, and
  :class:`KafkaSecurity`, how its clients authenticate;
- :mod:`gateway.bus.acls`: the broker ACLs that let each partner write only its own ``in.`` topic;
- :mod:`gateway.bus.errors`: :class:`BusUnavailable` (with ``retriable``), :class:`CommitFailed` (a rebalance
  overtook an offset commit) and :class:`UnknownTopicError`.

The composition root picks one implementation from the settings; nothing else needs to know which.
"""

from gateway.bus.embedded import EmbeddedBus
from gateway.bus.errors import BusError, BusUnavailable, CommitFailed, UnknownTopicError
from gateway.bus.kafka import KafkaBus, KafkaSecurity
from gateway.bus.port import Bus, BusConsumer, BusRecord, OutgoingRecord

__all__ = [
    "Bus",
    "BusConsumer",
    "BusError",
    "BusRecord",
    "BusUnavailable",
    "CommitFailed",
    "EmbeddedBus",
    "KafkaBus",
    "KafkaSecurity",
    "OutgoingRecord",
    "UnknownTopicError",
]
