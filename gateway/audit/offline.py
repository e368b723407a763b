"""Offline verification of the audit log held in a store: every record, every signed checkpoint, every
stored Merkle subtree; and the rebuild of subtree hashes a log written before they were stored lacks.

Reads the head, the checkpoints and the registered public keys in one transaction, then the records in
aligned blocks (``page_size`` rounded down to a power of two; bounded memory), each read with the stored
subtree hashes it completes and the record before it, and checked by a
:class:`~gateway.audit.verify.SegmentChecker`; an :class:`~gateway.audit.verify.AuditVerifier` puts the
blocks' results together in index order and checks the head and the checkpoints. The blocks end at the head
as first read, so that a running gateway can go on appending; a record past the head is looked for at the end,
against the head as it is then. A long log is checked by worker processes (:mod:`gateway.audit.verify_worker`),
one or more per core, each reading its blocks itself through a server-side cursor; a short one, or a database
the workers cannot open, in this process, streaming each block through SQLAlchemy. Both give the same report.
Used by ``gateway audit verify``, the integrity status of every privacy-officer answer and the tamper-evidence
tests. :func:`rebuild_stored_nodes` is ``gateway audit rebuild-nodes``.
"""

from __future__ import annotations

import asyncio
import os
import struct
import sys
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.engine import make_url

from gateway.audit.checkpoint import VerifierKey
from gateway.audit.merkle import STORED_NODE_LEVEL, MerkleAccumulator
from gateway.audit.verify import (
    SEGMENT_COLUMNS,
    AuditVerifier,
    SegmentChecker,
    SegmentResult,
    VerificationReport,
    nodes_by_level,
)
from gateway.audit.verify_worker import FETCH_ROWS, node_ranges
from gateway.store import Store
from gateway.store.tables import audit_log, audit_merkle_nodes

__all__ = ["NodeRebuild", "Progress", "rebuild_stored_nodes", "verify_stored_log"]

Progress = Callable[[int, int], None]
"""Called after each page with (records done, records in all): the commands draw a progress bar from it."""

DEFAULT_BLOCK = 16_384
"""Records per block (a power of two): about 18 MB of records, read and checked as one unit."""

WORKERS_FROM = 8
"""Logs of at least this many blocks are checked in worker processes (when ``workers`` is not given)."""


async def verify_stored_log(store: Store, origin: str | None, trusted: Sequence[VerifierKey] | None = None, *,
                            page_size: int = DEFAULT_BLOCK, workers: int | None = None,
                            progress: Progress | None = None) -> VerificationReport:
    """Recompute the log in ``store`` and check its checkpoints, signed as ``origin`` (any name if None).

    ``trusted`` are the only keys whose signatures count (for example a witness's own copy of the verifier
    keys); by default, the keys registered in the store. Retirement times always come from the store. The
    stored Merkle subtree hashes are recomputed from the records and compared, never trusted.

    Records are read and checked in blocks of ``page_size`` rounded down to a power of two. ``workers``
    worker processes check them (0: all in this process); by default one per core, at least two, for a log
    of at least :data:`WORKERS_FROM` blocks on a PostgreSQL database or a SQLite file, none otherwise.
    """
    async with store.transaction() as tx:
        head = await tx.audit_head()
        checkpoints = await tx.audit_checkpoints()
        stored_keys = await tx.audit_signing_keys()
    verifier = AuditVerifier((c.tree_size for c in checkpoints), check_nodes=True)
    block = 1 << (max(1, page_size).bit_length() - 1)
    # Up to the head only: on a running gateway, records appended after the head was read are not a problem.
    # The records the head does not count are looked for afterwards, against the head as it is then.
    blocks = [(start, min(start + block, head.size)) for start in range(0, head.size, block)]
    target = _worker_target(store)
    count = workers if workers is not None else (
        max(2, os.cpu_count() or 1) if len(blocks) >= WORKERS_FROM and target is not None else 0)
    count = min(count, len(blocks))
    if count > 0 and target is None:
        raise ValueError("worker processes cannot open this database (an in-memory SQLite database?)")
    try:
        if count > 0 and target is not None:
            await _absorb(verifier, _blocks_in_workers(target, blocks, verifier, count), head.size, progress)
        elif blocks:
            await _absorb(verifier, _blocks_in_process(store, blocks, verifier), head.size, progress)
    except _WorkersUnavailable as exc:  # start again, in this process
        verifier = AuditVerifier((c.tree_size for c in checkpoints), check_nodes=True)
        verifier.warn(f"the log was checked in this process: worker processes could not start ({exc})")
        await _absorb(verifier, _blocks_in_process(store, blocks, verifier), head.size, progress)
    async with store.transaction() as tx:
        past = await tx.audit_record_past_head()
    if past is not None:
        verifier.fail(past[0], f"record {past[0]} is past the head, which counts {past[1]} records")
    keys = list(trusted) if trusted is not None else [k.verifier for k in stored_keys]
    retired = {k.verifier: k.retired_at for k in stored_keys if k.retired_at is not None}
    return verifier.report(head, checkpoints, keys, origin=origin, retired_at=retired)


async def _absorb(verifier: AuditVerifier, results: AsyncGenerator[SegmentResult, None], size: int,
                  progress: Progress | None) -> None:
    try:
        async for result in results:
            if not verifier.absorb(result):
                break
            if progress is not None:
                progress(min(result.start + result.checked, size), size)
    finally:
        await results.aclose()


class _WorkersUnavailable(RuntimeError):
    """A worker process did not start or could not open the database; nothing it did counts."""


def _rows_query(start: int, end: int, final: bool) -> Select[Any]:
    query = select(*(audit_log.c[name] for name in SEGMENT_COLUMNS)).order_by(audit_log.c.idx)
    if final:  # no upper bound: a record past a gap is found, as by reading on from the gap
        return query.where(audit_log.c.idx >= start).limit(end - start)
    return query.where(audit_log.c.idx >= start, audit_log.c.idx < end)


async def _blocks_in_process(store: Store, blocks: list[tuple[int, int]],
                             verifier: AuditVerifier) -> AsyncGenerator[SegmentResult, None]:
    """Each block read in one transaction on ``store.engine``, its records streamed from a server-side cursor."""
    last = blocks[-1][0]
    for start, end in blocks:
        async with store.engine.connect() as conn:
            before = None
            if start > 0:
                before = (await conn.execute(
                    select(*(audit_log.c[name] for name in SEGMENT_COLUMNS)).where(audit_log.c.idx == start - 1)
                )).first()
            nodes: dict[int, tuple[list[int], list[bytes]]] = {}
            ranges = node_ranges(start, end)
            if ranges:
                c = audit_merkle_nodes.c
                rows = await conn.execute(select(c.level, c.idx, c.hash).where(or_(*(
                    and_(c.level == level, c.idx >= first, c.idx < stop) for level, first, stop in ranges))))
                nodes = nodes_by_level((r.level, r.idx, r.hash) for r in rows)
            checker = SegmentChecker(start, end, before, verifier.wanted_within(start, end))
            stream = await conn.stream(_rows_query(start, end, start == last).execution_options(yield_per=FETCH_ROWS))
            async for batch in stream.partitions():
                if not checker.feed(batch):
                    break
            await stream.close()
            result = checker.finish(nodes)
        yield result


def _worker_target(store: Store) -> dict[str, str] | None:
    """What a worker process connects to: the store's database, by the driver's own means (None: it cannot)."""
    url = store.engine.url
    if url.get_backend_name() == "postgresql":
        dsn = make_url(url.render_as_string(hide_password=False)).set(drivername="postgresql")
        return {"dialect": "postgresql", "target": dsn.render_as_string(hide_password=False)}
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" \
            and not url.database.startswith("file:"):
        return {"dialect": "sqlite", "target": os.path.abspath(url.database)}
    return None


_HEADER = struct.Struct(">I")


class _Worker:
    """One ``python -m gateway.audit.verify_worker`` process and the blocks sent to it, in order."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.pending: list[int] = []

    async def send(self, value: Any) -> None:
        import pickle

        assert self.process.stdin is not None
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self.process.stdin.write(_HEADER.pack(len(data)) + data)
        await self.process.stdin.drain()

    async def receive(self) -> Any:
        import pickle

        assert self.process.stdout is not None
        try:
            header = await self.process.stdout.readexactly(_HEADER.size)
            data = await self.process.stdout.readexactly(_HEADER.unpack(header)[0])
        except asyncio.IncompleteReadError:
            raise _WorkersUnavailable(f"a worker ended early: {await self._stderr()}") from None
        value = pickle.loads(data)  # noqa: S301 - frames from the worker process this function started
        if isinstance(value, tuple) and value and value[0] == "unavailable":
            raise _WorkersUnavailable(value[1].strip().splitlines()[-1])
        if isinstance(value, tuple) and value and value[0] == "error":
            raise RuntimeError(f"an audit verify worker failed:\n{value[1]}")
        return value

    async def _stderr(self) -> str:
        self.process.kill()
        assert self.process.stderr is not None
        return (await self.process.stderr.read()).decode(errors="replace").strip()[-2000:] or "no output"

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


async def _blocks_in_workers(target: dict[str, str], blocks: list[tuple[int, int]], verifier: AuditVerifier,
                             count: int) -> AsyncGenerator[SegmentResult, None]:
    """Blocks checked by ``count`` worker processes, handed out as they finish, yielded in index order."""
    last = blocks[-1][0]
    results: list[asyncio.Future[SegmentResult]] = [asyncio.get_running_loop().create_future() for _ in blocks]
    next_block = 0
    workers: list[_Worker] = []
    servers: list[asyncio.Task[None]] = []

    async def request(worker: _Worker) -> None:
        nonlocal next_block
        if next_block < len(blocks):
            start, end = blocks[next_block]
            worker.pending.append(next_block)
            next_block += 1
            await worker.send((start, end, start == last, verifier.wanted_within(start, end)))

    async def serve(worker: _Worker) -> None:
        await worker.send(target)
        for _ in range(2):  # one block queued behind the one in hand: the worker never waits for the parent
            await request(worker)
        while worker.pending:
            number = worker.pending.pop(0)
            try:
                results[number].set_result(await worker.receive())
            except Exception as exc:  # the block's reader raises it, in index order
                results[number].set_exception(exc)
                return
            await request(worker)
        await worker.send(None)

    try:
        for _ in range(count):
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway.audit.verify_worker", stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, limit=1 << 20)
            workers.append(_Worker(process))
        servers.extend(asyncio.create_task(serve(worker)) for worker in workers)
        for result in results:
            yield await result
        await asyncio.gather(*servers)
    finally:
        for task in servers:
            task.cancel()
        for future in results:  # blocks after the answer: their errors, if any, are of no interest
            if future.done() and not future.cancelled():
                future.exception()
            future.cancel()
        for worker in workers:
            await worker.close()


@dataclass(frozen=True, slots=True)
class NodeRebuild:
    """Outcome of :func:`rebuild_stored_nodes`."""

    size: int
    """Records whose subtrees were considered (the log's size when the rebuild started)."""
    added: int
    """Subtree hashes that were missing and are now stored."""
    root_matches: bool
    """Whether the root recomputed from the stored leaf hashes is the head's; if not, run ``audit verify``."""


async def rebuild_stored_nodes(store: Store, *, page_size: int = 50_000,
                               progress: Progress | None = None) -> NodeRebuild:
    """Store the hash of every complete Merkle subtree of the log that is missing, from the leaf hashes (those of
    :data:`~gateway.audit.merkle.STORED_NODE_LEVEL` and up: smaller ones are not stored).

    For logs written before subtree hashes were stored (migration 0007). Reads the leaf hashes in pages of
    ``page_size``, one transaction each, so appends go on meanwhile (they store the subtrees they complete
    themselves). A subtree already stored is left as it is, even if it differs: ``gateway audit verify``
    names such a node. Raises ``ValueError`` if records are missing below the head's size.
    """
    async with store.transaction() as tx:
        head = await tx.audit_head()
    tree = MerkleAccumulator()
    tree.track_completed(STORED_NODE_LEVEL)  # the smaller ones are hashed from their leaves when needed
    added = 0
    for start in range(0, head.size, page_size):
        end = min(head.size, start + page_size)
        async with store.transaction() as tx:
            leaves = await tx.audit_leaf_hashes(end, start)
            if len(leaves) != end - start:
                raise ValueError(f"records {start} to {end - 1}: {len(leaves)} found, {end - start} expected; "
                                 "run `gateway audit verify`")
            tree.extend(leaves)
            stored = await tx.audit_nodes_completed_within(start, end)
            missing = [(key, value) for key, value in tree.take_completed() if key not in stored]
            await tx.add_audit_nodes(missing)
            added += len(missing)
        if progress is not None:
            progress(end, head.size)
    return NodeRebuild(size=head.size, added=added, root_matches=tree.root() == head.root())
