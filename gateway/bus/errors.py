"""Errors raised by the bus implementations.

Both implementations translate their foreign errors (aiokafka's ``KafkaError`` tree, ``sqlite3`` errors) into
these at the boundary, so callers such as the outbox relay decide what to do from one small tree::

    BusError
    ├── BusUnavailable      the bus could not do it now; ``retriable`` says whether trying again may help
    ├── CommitFailed        the consumer group rebalanced before an offset commit: what was fetched since the
    │                       last commit will be delivered again (to this member or another); carry on fetching
    └── UnknownTopicError   the topic does not exist and is not created implicitly (never retriable)
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["BusError", "BusUnavailable", "CommitFailed", "UnknownTopicError"]


class BusError(Exception):
    """Base of every error the bus raises."""

    retriable: bool = False
    """True when the same call may succeed later without anything being changed."""


class BusUnavailable(BusError):
    """The broker or the embedded log could not complete the operation."""

    def __init__(self, message: str, *, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable


class CommitFailed(BusError):
    """An offset commit the group no longer accepts, because it rebalanced (a member joined, left or was
    considered gone) after the records were fetched.

    Nothing is lost: the records since the last successful commit are delivered again, and the handlers'
    idempotence (message ids are claimed once in the store) absorbs the repeat. The consumer keeps fetching;
    the next fetch rejoins the group. Never retried as such: retrying the same commit cannot succeed.
    """

    retriable = False


class UnknownTopicError(BusError):
    """Publishing to a topic that does not exist; topics are created only by ``ensure_topics``."""

    retriable = False

    def __init__(self, topics: Iterable[str]) -> None:
        self.topics: tuple[str, ...] = tuple(sorted(set(topics)))
        """The topics that were not found."""
        names = ", ".join(self.topics)
        super().__init__(f"unknown topic(s): {names}; create them with ensure_topics (topics are not auto-created)")
