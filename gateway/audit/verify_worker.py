"""A worker process of ``gateway audit verify``: checks blocks of the audit log it reads itself, on another core.

:func:`gateway.audit.offline.verify_stored_log` starts a few of these (``python -m gateway.audit.verify_worker``)
for a long log and sends each the database to read and then, one at a time, aligned blocks of records to
check. For each block the worker reads, in one read-only transaction, the record before the block, the stored
Merkle subtrees the block completes and the block's records (PostgreSQL: through a server-side cursor, in
batches), runs a :class:`~gateway.audit.verify.SegmentChecker` over them and sends back its small
:class:`~gateway.audit.verify.SegmentResult`. The parent puts the results together in index order, so the
answer (first bad index and every message) is the same as when it checks the blocks itself.

It reads through the driver directly (asyncpg, or sqlite3 for a SQLite file), not through the store, so that
a worker imports neither SQLAlchemy nor the rest of the gateway and starts in a fraction of a second.

Protocol, on standard input and output: frames of a 4-byte big-endian length and a pickle. The parent sends
``{"dialect": "postgresql" | "sqlite", "target": dsn-or-path}`` first, then requests ``(start, end, final,
wanted)`` and finally None; the worker answers each request with a ``SegmentResult``, or with
``("error", traceback)``, and exits on None or end of input. If it cannot open the database it answers
the first request with ``("unavailable", traceback)`` and exits: the parent then checks the log itself.
Pickle is safe here: both ends are this code, started by the parent.
"""

from __future__ import annotations

import asyncio
import pickle
import sqlite3
import struct
import sys
import traceback
from collections.abc import Iterable, Sequence
from typing import Any, BinaryIO, Protocol

from gateway.audit.verify import SEGMENT_COLUMNS, SegmentChecker, SegmentResult, nodes_by_level

__all__ = ["FETCH_ROWS", "node_ranges", "read_frame", "write_frame"]

FETCH_ROWS = 2_000
"""Rows fetched from the cursor at a time (about 2 MB of records)."""

_HEADER = struct.Struct(">I")
_COLUMNS = ", ".join(SEGMENT_COLUMNS)


def read_frame(stream: BinaryIO) -> Any:
    """The next frame's object, or None at the end of the stream."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (length,) = _HEADER.unpack(header)
    return pickle.loads(stream.read(length))  # noqa: S301 - frames from the parent process, which is this code


def write_frame(stream: BinaryIO, value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def node_ranges(start: int, end: int) -> list[tuple[int, int, int]]:
    """(level, first index, end index) of the stored subtrees completed by records ``start`` .. ``end - 1``.

    The same ranges as ``StoreTransaction.audit_nodes_completed_within``: a subtree is completed by its last record.
    """
    return [(level, start >> level, end >> level) for level in range(1, end.bit_length())
            if end >> level > start >> level]


class _Reader(Protocol):
    def block(self, start: int, end: int, final: bool, wanted: Sequence[int]) -> SegmentResult: ...


class _PostgresReader:
    def __init__(self, dsn: str) -> None:
        import asyncpg

        self._loop = asyncio.new_event_loop()
        self._conn = self._loop.run_until_complete(asyncpg.connect(dsn))
        # The record text as the UTF-8 bytes the server sends: it is hashed as bytes, so decoding it to str
        # and encoding it again would be work for nothing (the checks accept either).
        self._loop.run_until_complete(self._conn.set_type_codec(
            "text", schema="pg_catalog", encoder=lambda value: value, decoder=lambda value: value, format="binary"))

    def block(self, start: int, end: int, final: bool, wanted: Sequence[int]) -> SegmentResult:
        return self._loop.run_until_complete(self._block(start, end, final, wanted))

    async def _block(self, start: int, end: int, final: bool, wanted: Sequence[int]) -> SegmentResult:
        conn = self._conn
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            before = None
            if start > 0:
                before = await conn.fetchrow(f"SELECT {_COLUMNS} FROM audit_log WHERE idx = $1", start - 1)  # noqa: S608
            ranges = node_ranges(start, end)
            nodes: dict[int, tuple[list[int], list[bytes]]] = {}
            if ranges:  # one row per level, its indexes and hashes as two arrays: no Python object per row
                levels, firsts, ends = zip(*ranges, strict=True)
                rows = await conn.fetch(
                    "SELECT n.level, array_agg(n.idx ORDER BY n.idx), array_agg(n.hash ORDER BY n.idx) "
                    "FROM audit_merkle_nodes n "
                    "JOIN unnest($1::int[], $2::bigint[], $3::bigint[]) AS r(level, lo, hi) "
                    "ON n.level = r.level AND n.idx >= r.lo AND n.idx < r.hi GROUP BY n.level",
                    list(levels), list(firsts), list(ends))
                nodes = {int(r[0]): (list(r[1]), list(r[2])) for r in rows}
            checker = SegmentChecker(start, end, before, wanted)
            if final:  # no upper bound: a record past a gap is found, as by reading on from the gap
                cursor = await conn.cursor(f"SELECT {_COLUMNS} FROM audit_log WHERE idx >= $1 "  # noqa: S608
                                           "ORDER BY idx LIMIT $2", start, end - start)
            else:
                cursor = await conn.cursor(f"SELECT {_COLUMNS} FROM audit_log WHERE idx >= $1 AND idx < $2 "  # noqa: S608
                                           "ORDER BY idx", start, end)
            while True:
                batch = await cursor.fetch(FETCH_ROWS)
                if not batch or not checker.feed(batch):
                    break
        return checker.finish(nodes)


class _SqliteReader:
    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        self._conn.execute("PRAGMA query_only = ON")

    def block(self, start: int, end: int, final: bool, wanted: Sequence[int]) -> SegmentResult:
        conn = self._conn
        conn.execute("BEGIN")
        try:
            before = None
            if start > 0:
                before = conn.execute(f"SELECT {_COLUMNS} FROM audit_log WHERE idx = ?", (start - 1,)).fetchone()  # noqa: S608
            found: list[tuple[int, int, bytes]] = []
            for level, first, stop in node_ranges(start, end):
                found.extend(conn.execute("SELECT level, idx, hash FROM audit_merkle_nodes WHERE level = ? "
                                          "AND idx >= ? AND idx < ? ORDER BY idx", (level, first, stop)))
            nodes = nodes_by_level(found)
            checker = SegmentChecker(start, end, before, wanted)
            if final:
                cursor = conn.execute(f"SELECT {_COLUMNS} FROM audit_log WHERE idx >= ? ORDER BY idx LIMIT ?",  # noqa: S608
                                      (start, end - start))
            else:
                cursor = conn.execute(f"SELECT {_COLUMNS} FROM audit_log WHERE idx >= ? AND idx < ? ORDER BY idx",  # noqa: S608
                                      (start, end))
            while True:
                batch: Iterable[Sequence[Any]] = cursor.fetchmany(FETCH_ROWS)
                if not batch or not checker.feed(batch):
                    break
            cursor.close()
        finally:
            conn.execute("COMMIT")
        return checker.finish(nodes)


def main() -> int:
    """Serve requests from the parent until it sends None or closes the pipe."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write to the frames' stream
    config = read_frame(stdin)
    if config is None:
        return 0
    reader: _Reader
    try:
        if config["dialect"] == "postgresql":
            reader = _PostgresReader(config["target"])
        else:
            reader = _SqliteReader(config["target"])
    except Exception:
        write_frame(stdout, ("unavailable", traceback.format_exc()))
        return 1
    while (request := read_frame(stdin)) is not None:
        start, end, final, wanted = request
        try:
            result: Any = reader.block(start, end, final, wanted)
        except Exception:
            result = ("error", traceback.format_exc())
        write_frame(stdout, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
