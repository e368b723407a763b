"""Errors raised by the bus implementations.

Both implementations translate their foreign errors (aiokafka's ``KafkaError`` tree, ``sqlite3`` errors) into
these at the boundary, so callers such as the outbox relay decide what to do from one small tree::

    BusError
    ├── BusUnavailable      the bus could not do it now; ``retriable`` says whether trying again may help
    └── UnknownTopicError   the topic does not exist and is not created implicitly (never retriable)
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["BusError", "BusUnavailable", "UnknownTopicError"]


class BusError(Exception):
    """Base of every error the bus raises."""

    retriable: bool = False
    """True when the same call may succeed later without anything being changed."""


class BusUnavailable(BusError):
    """The broker or the embedded log could not complete the operation."""

    def __init__(self, message: str, *, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable


class UnknownTopicError(BusError):
    """Publishing to a topic that does not exist; topics are created only by ``ensure_topics``."""

    retriable = False

    def __init__(self, topics: Iterable[str]) -> None:
        self.topics: tuple[str, ...] = tuple(sorted(set(topics)))
        """The topics that were not found."""
        names = ", ".join(self.topics)
        super().__init__(f"unknown topic(s): {names}; create them with ensure_topics (topics are not auto-created)")
