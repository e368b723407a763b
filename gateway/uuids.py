"""Time-ordered random ids (UUID version 7, RFC 9562) for the ids the gateway mints on every message: outgoing
message ids, decision ids and audit record ids.

Version 7, not 4, because two of them are keys of unique indexes that grow with every referral: the audit log's
record ids and the outbox's message ids. A random key (version 4) lands on a random leaf page of its index, so
each insert reads and dirties a page of its own, and once the index outgrows the database's cache every insert
is a read and, after each checkpoint, a whole page written to the write-ahead log. A version 7 id starts with
its creation time in milliseconds, so consecutive ids land on the index's newest pages. Measured on PostgreSQL
(``bench/store_writes.py --only ids``: 200,000 rows shaped as the gateway's copied into a migrated database in
batches of 1,000), the database's CPU per row was 8.3-9.3 us with version 4 ids and 6.2-6.8 with version 7 for
the audit log, 8.1-9.2 against 7.2-8.0 for the outbox (where only the referrals' ids are the gateway's own).

Each id is its creation time to the millisecond (48 bits), the version, and 74 bits that are random but for a
counter that keeps the ids one process mints within one millisecond increasing. The time says nothing new: every
record and message that carries such an id carries its time too. ``uuid-utils`` (Rust) writes one in 0.2-0.3 us,
where ``str(uuid.uuid4())`` takes 2.6 us; a forked child mints ids of its own (``tests/unit/test_uuids.py``).
"""

from __future__ import annotations

import uuid_utils

__all__ = ["uuid7_text"]


def uuid7_text() -> str:
    """A new time-ordered random id (UUID version 7), as ``str(uuid.UUID)`` writes it."""
    return str(uuid_utils.uuid7())
