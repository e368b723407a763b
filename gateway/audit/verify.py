"""Offline verification of the audit log: recompute every hash and name the first bad index.

Checks, for each stored entry in index order: no gap or repeat in indexes; the stored text is the RFC 8785
canonical form of itself; its ``log_index`` and ``prev_chain_hash`` fields match its position; the leaf hash
and chain hash recompute; the columns stored beside the text for queries (record id, event type, subject
reference, recorded time) equal the record's own fields; and at the end that the head's size, chain hash and
Merkle root match.

:class:`AuditVerifier` does the same page by page (bounded memory for long logs) and then checks the signed
checkpoints: every note's signatures against the verifier keys (from the database, or from a file the
verifying party holds, for independence), that the stored size and root are the signed ones, that no key
signed after it was retired, that checkpoint sizes never decrease, and that each checkpoint's root equals the
root recomputed from the records at its size. A rewritten record whose hashes were all recomputed is caught
there: the first bad index is then the size of the last checkpoint that still matches, since the records
after it are the first ones no signature vouches for.

Blocks (what :func:`gateway.audit.offline.verify_stored_log` does, on several cores): the log is cut into
aligned blocks (a power of two records, starting at a multiple of it), which :class:`SegmentChecker` checks
each on its own, from the stored row before the block, and :meth:`AuditVerifier.absorb` puts together in
index order: the blocks' Merkle subtrees join the tree whole, the roots at checkpoint sizes inside a block
come from the block's partial frontier. A block's result counts only if every record before it verified,
and then the stored chain hash it started from is the recomputed one: the report, first bad index and
messages, is the one of checking record after record.

The canonical-form check takes a fast path (orjson with sorted keys, several times cheaper than parsing with
hooks and the RFC 8785 serialiser) when that provably gives the same bytes, and the RFC 8785 path otherwise;
only the RFC 8785 path ever finds a record not canonical (see :func:`_fast_canonical_body`).

Stored Merkle subtrees (``audit_merkle_nodes``, which proofs are built from): with ``check_nodes``, each
subtree hash the records complete is recomputed and compared with the stored one; a differing one is a
problem naming its level and index (it implicates no record: the records and checkpoints are checked on
their own, never against the stored subtrees), a missing one only a warning (logs written before they were
stored; ``gateway audit rebuild-nodes`` fills them in). The subtrees completed in a page or block that holds
a bad record are not compared (the bad record is the answer).

Record times (T-13): the store clamps each record's ``recorded_at`` to at least its predecessor's, so a log
written since then never steps back. A backward step is still reported as a warning, not a failure: logs
written before the clamp may hold one, and a time is not what the hashes protect (an edited time breaks the
chain, or, with every hash recomputed, the signed checkpoints).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.audit.canonical import CanonicalJSONError, canonical_json
from gateway.audit.chain import GENESIS_CHAIN_HASH, ChainHead, chain_hash
from gateway.audit.checkpoint import Checkpoint, CheckpointError, VerifierKey, open_note
from gateway.audit.merkle import EMPTY_ROOT, STORED_NODE_LEVEL, MerkleAccumulator, NodeKey, node_hash
from gateway.audit.stored import StoredCheckpoint

__all__ = ["SEGMENT_COLUMNS", "AuditVerifier", "SegmentChecker", "SegmentResult", "VerificationReport",
           "nodes_by_level", "verify_audit", "verify_log"]


@dataclass(frozen=True, slots=True)
class VerificationReport:
    """Outcome of :func:`verify_log`."""

    ok: bool
    size: int
    root_hex: str
    first_bad_index: int | None = None
    problem: str | None = None
    checkpoints: int = 0
    """Signed checkpoints that verified (signature, stored copy, root at their size); :func:`verify_audit` only."""
    bad_checkpoint: int | None = None
    """Id of the first checkpoint found bad, if any."""
    problems: tuple[str, ...] = ()
    """Every problem found, the one in ``problem`` first (:func:`verify_audit` only)."""
    warnings: tuple[str, ...] = ()
    """Oddities that are not proof of tampering, such as a record time earlier than the one before it."""
    chain_ok: bool = False
    """Whether every record and the head recompute (hash chain and Merkle root), checkpoints aside."""
    bad_node: NodeKey | None = None
    """(level, index) of the first stored Merkle subtree hash found to differ from the records, if any."""


def verify_log(entries: Iterable[Mapping[str, Any]], head: ChainHead) -> VerificationReport:
    """Verify stored entries (``idx``, ``record``, ``leaf_hash``, ``chain_hash``) against the head."""
    tree = MerkleAccumulator()
    previous = GENESIS_CHAIN_HASH
    expected = 0
    for entry in entries:
        index = int(entry["idx"])
        problem = _check_entry(entry, expected, previous)
        if problem is not None:
            return VerificationReport(False, expected, tree.root().hex(), min(index, expected), problem)
        leaf = bytes(entry["leaf_hash"])
        previous = chain_hash(previous, leaf)
        tree.append(leaf)
        expected += 1
    if expected != head.size:
        return VerificationReport(False, expected, tree.root().hex(), expected,
                                  f"the head says {head.size} records, the log holds {expected}")
    if previous != head.chain_hash:
        return VerificationReport(False, expected, tree.root().hex(), expected - 1 if expected else 0,
                                  "chain hash of the last record differs from the head")
    if tree.root() != head.root():
        return VerificationReport(False, expected, tree.root().hex(), expected - 1 if expected else 0,
                                  "Merkle root differs from the head")
    return VerificationReport(True, expected, tree.root().hex(), chain_ok=True)


_MAX_SAFE_INTEGER = 2**53 - 1


def _parse(text: str) -> tuple[Any, bool]:
    """Parse a stored record; the flag says whether its canonical form may be checked the cheap way.

    The strict path, for the records :func:`_fast_canonical_body` is not sure of. The cheap way (orjson with
    sorted keys, about 30 times faster than the RFC 8785 serialiser) gives the same bytes as RFC 8785 for
    ASCII text without fractions, exponents, NaN or integers beyond 2**53 - 1: keys then sort the same by
    code point and by UTF-16 unit, and both escape the same characters the same way. Anything else takes
    the RFC 8785 serialiser.
    """
    simple = text.isascii()

    def on_float(literal: str) -> float:
        nonlocal simple
        simple = False
        return float(literal)

    def on_int(literal: str) -> int:
        nonlocal simple
        value = int(literal)
        if not -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER:
            simple = False
        return value

    def on_constant(literal: str) -> float:
        nonlocal simple
        simple = False
        return float(literal)

    body = json.loads(text, parse_float=on_float, parse_int=on_int, parse_constant=on_constant)
    return body, simple


def _sorted_json(body: Any) -> bytes | None:
    try:
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):  # a lone surrogate: let the RFC 8785 path name the problem
        return None


def _strict_body(record: str | bytes) -> tuple[str | None, dict[str, Any]]:
    """The problem with the record text (None if canonical) and the parsed record, the RFC 8785 way."""
    try:
        text = record if isinstance(record, str) else record.decode("utf-8")
        body, simple = _parse(text)
        if not isinstance(body, dict):
            return "record text is not a JSON object", {}
        if not (simple and _sorted_json(body) == text.encode("ascii")) and canonical_json(body).decode() != text:
            return "record text is not in canonical form (edited)", body
    except (ValueError, CanonicalJSONError):
        return "record text is not valid JSON", {}
    return None, body


_SORTED_STRICT = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER


def _fast_canonical_body(text: str | bytes) -> dict[str, Any] | None:
    r"""The parsed record if its text is certainly RFC 8785 canonical; None if unsure (then ask :func:`_strict_body`).

    Certain when the text is ASCII, holds no number but integers within +/-(2**53 - 1), and orjson's
    sorted-key serialisation of it gives it back byte for byte. For such a value RFC 8785 writes the same
    bytes: ASCII keys sort the same by code point as by UTF-16 unit, integers are written the same, and both
    escape the same characters the same way (``\"``, ``\\``, ``\b \f \n \r \t``, other control characters as
    lowercase ``\u00xx``). Floats are looked for in the parsed value (orjson also reads integers beyond 64
    bits as floats); integers beyond 2**53 - 1 make the serialisation fail. Anything that round-trips
    differently (an escape that need not be one, ``-0``, a repeated key, whitespace) is left to the strict
    path, which alone decides that a record is not canonical and says why.
    """
    if not text.isascii():
        return None
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if type(body) is not dict or not _holds_no_float(body):
        return None
    try:
        again = orjson.dumps(body, option=_SORTED_STRICT)
    except orjson.JSONEncodeError:
        return None
    return body if again == (text.encode("ascii") if isinstance(text, str) else text) else None


def _holds_no_float(value: Any) -> bool:
    """Whether a value parsed from JSON (dicts, lists, strings, numbers, booleans, None) holds no float."""
    items: Iterable[Any] = value.values() if type(value) is dict else value
    for item in items:
        kind: type = type(item)
        if kind is str or kind is int or kind is bool or item is None:
            continue
        if kind is float or not _holds_no_float(item):
            return False
    return True


_ABSENT: Any = object()
"""An indexed column the entry does not carry (entries built by hand); it is then not compared."""

_LEAF_PREFIX = b"\x00"
_sha256 = hashlib.sha256


def _check_record(
    index: int, expected: int, text: str | bytes, stored_leaf: bytes, stored_chain: bytes, previous: bytes,
    record_id: Any = _ABSENT, event_type: Any = _ABSENT, subject_ref: Any = _ABSENT, recorded_at: Any = _ABSENT,
) -> tuple[str | None, dict[str, Any], bytes, datetime | None]:
    """Check one stored record after ``previous`` (the chain hash before it).

    ``text`` is the stored record, as text or as its UTF-8 bytes (what the database holds, undecoded).
    Returns the problem (None if it is sound), the parsed record, its leaf hash and its ``recorded_at`` when
    the stored column was compared with it (None otherwise). The checks and their order are the module
    docstring's; the first that fails is the problem.
    """
    if index != expected:
        return f"expected index {expected}, found {index} (gap, repeat or reordering)", {}, b"", None
    body = _fast_canonical_body(text)
    if body is None:
        problem, body = _strict_body(text)
        if problem is not None:
            return problem, body, b"", None
    if body.get("log_index") != index:
        return "record's log_index does not match its position", body, b"", None
    if body.get("prev_chain_hash") != previous.hex():
        return "record's prev_chain_hash does not match the chain", body, b"", None
    leaf = _sha256(_LEAF_PREFIX + (text.encode("utf-8") if isinstance(text, str) else text)).digest()
    if leaf != bytes(stored_leaf):
        return "leaf hash does not match the record", body, leaf, None
    if _sha256(previous + leaf).digest() != bytes(stored_chain):
        return "chain hash does not match", body, leaf, None
    # Columns stored beside the record text so queries can select on them (the art. 15 report selects a person's
    # records by subject_ref). They are copies of the record's own fields, which the hashes protect; a copy that
    # differs would hide a record from the queries, so it is a problem at that index.
    if record_id is not _ABSENT and record_id != body.get("record_id"):
        return _column_problem("record_id"), body, leaf, None
    if event_type is not _ABSENT and event_type != body.get("event_type"):
        return _column_problem("event_type"), body, leaf, None
    if subject_ref is not _ABSENT and subject_ref != body.get("subject_ref"):
        return _column_problem("subject_ref"), body, leaf, None
    if recorded_at is _ABSENT:
        return None, body, leaf, None
    try:
        recorded = datetime.fromisoformat(str(body.get("recorded_at")))
    except ValueError:
        return "record has no valid recorded_at", body, leaf, None
    stored_at = recorded_at
    if isinstance(stored_at, str):
        stored_at = datetime.fromisoformat(stored_at)
    if isinstance(stored_at, datetime) and stored_at.tzinfo is None:
        stored_at = stored_at.replace(tzinfo=UTC)
    if stored_at != recorded:
        return _column_problem("recorded_at"), body, leaf, recorded
    return None, body, leaf, recorded


def _column_problem(column: str) -> str:
    return f"stored column {column} differs from the record (edited beside the hashed text)"


def _check_entry(entry: Mapping[str, Any], expected: int, previous: bytes) -> str | None:
    return _checked_entry(entry, expected, previous)[0]


def _checked_entry(entry: Mapping[str, Any], expected: int, previous: bytes) -> tuple[str | None, dict[str, Any]]:
    """The problem with ``entry`` (None if it is sound) and its parsed record."""
    index = int(entry["idx"])
    if index != expected:
        return f"expected index {expected}, found {index} (gap, repeat or reordering)", {}
    problem, body, _, _ = _check_record(
        index, expected, str(entry["record"]), entry["leaf_hash"], entry["chain_hash"], previous,
        entry.get("record_id", _ABSENT), entry.get("event_type", _ABSENT), entry.get("subject_ref", _ABSENT),
        entry.get("recorded_at", _ABSENT))
    return problem, body


def _clock_warning(index: int, body: Mapping[str, Any], recorded: datetime | None,
                   last: datetime | None) -> tuple[str | None, datetime | None]:
    """A warning if record ``index`` was recorded before the one before it (recorded at ``last``); and the
    time to compare the next record with. ``recorded`` is the record's time if already parsed."""
    if recorded is None:
        try:
            recorded = datetime.fromisoformat(str(body.get("recorded_at")))
        except ValueError:
            return f"record {index} has no valid recorded_at", last
    if last is not None and recorded < last:
        return (f"record {index} was recorded at {recorded.isoformat()}, before record "
                f"{index - 1} ({last.isoformat()}): the gateway's clock went back"), recorded
    return None, recorded


def _time_of(text: str | bytes) -> datetime | None:
    """The ``recorded_at`` of a stored record text, None if it has none that parses."""
    try:
        return datetime.fromisoformat(str(json.loads(text).get("recorded_at")))
    except (ValueError, AttributeError):
        return None


SEGMENT_COLUMNS = ("idx", "record", "leaf_hash", "chain_hash", "record_id", "event_type", "subject_ref",
                   "recorded_at")
"""The stored columns of the audit log a :class:`SegmentChecker` is fed, in this order, one tuple per record."""


@dataclass(frozen=True, slots=True)
class SegmentResult:
    """What :class:`SegmentChecker` found in one aligned block of the log; small, so it crosses processes."""

    start: int
    end: int
    """The block is records ``start`` .. ``end - 1``."""
    checked: int
    """Records that verified, from ``start`` on (fewer than the block: a problem, or the rows ran out)."""
    first_index: int | None
    """Index of the first row read (None: no rows)."""
    problem: tuple[int, str] | None
    """(first bad index, problem), if a record did not verify."""
    chain_hash: bytes
    """Chain hash after the last record that verified."""
    frontier: tuple[tuple[int, bytes], ...]
    """(level, hash) of the perfect subtrees covering the records that verified, largest first."""
    roots: Mapping[int, tuple[tuple[int, bytes], ...]]
    """For each wanted checkpoint size in the block: the frontier of the block's records below it."""
    bad_nodes: tuple[NodeKey, ...]
    """Stored subtrees inside the block that differ from the records, in the order an append completes them."""
    missing_nodes: int
    stored_above: Mapping[NodeKey, bytes]
    """Stored subtrees completed by the block's records but larger than the block, for the caller to compare."""
    warnings: tuple[str, ...]
    last_recorded: datetime | None


class SegmentChecker:
    """Checks one block of the log, records ``start`` .. ``end - 1``, on its own: in another process if need be.

    ``start`` must be a multiple of a power of two at least ``end - start`` (aligned blocks), so that the
    block's Merkle subtrees are subtrees of the log's tree. ``before`` is the stored row at ``start - 1``
    (:data:`SEGMENT_COLUMNS`; None for the first block): the chain continues from its stored chain hash and
    the clock from its time, which is sound because the block's result only counts if every record before it
    verified, and then the stored chain hash is the recomputed one. Feed the rows in index order with
    :meth:`feed` (more rows than the block are allowed; they are checked as more records), then call
    :meth:`finish` with the stored subtree hashes the block completes. :meth:`AuditVerifier.absorb` takes the
    results, block after block.
    """

    def __init__(self, start: int, end: int, before: Sequence[Any] | None, wanted: Iterable[int] = ()) -> None:
        if end <= start or start & ((1 << (end - start - 1).bit_length()) - 1):
            raise ValueError(f"records {start} .. {end - 1} are not an aligned block of the log")
        self._start = start
        self._end = end
        self._wanted = sorted(s for s in wanted if s > start)
        self._expected = start
        self._first_index: int | None = None
        self._problem: tuple[int, str] | None = None
        self._leaves: list[bytes] = []
        self._warnings: list[str] = []
        if start == 0:
            self._previous = GENESIS_CHAIN_HASH
            self._last_recorded: datetime | None = None
        elif before is None:  # records are missing before the block: its result will not count
            self._previous = b""
            self._last_recorded = None
        else:
            self._previous = bytes(before[3])
            self._last_recorded = _time_of(before[1])

    def feed(self, rows: Iterable[Sequence[Any]]) -> bool:
        """Check the next rows; False once a record did not verify (later rows are then ignored)."""
        if self._problem is not None:
            return False
        expected = self._expected
        previous = self._previous
        last = self._last_recorded
        leaves = self._leaves
        try:
            for row in rows:
                index = int(row[0])
                if self._first_index is None:
                    self._first_index = index
                problem, body, leaf, recorded = _check_record(index, expected, row[1], row[2], row[3], previous,
                                                              row[4], row[5], row[6], row[7])
                if problem is not None:
                    self._problem = (min(index, expected), problem)
                    return False
                warning, last = _clock_warning(expected, body, recorded, last)
                if warning is not None:
                    self._warnings.append(warning)
                previous = bytes(row[3])
                leaves.append(leaf)
                expected += 1
        finally:
            self._expected = expected
            self._previous = previous
            self._last_recorded = last
        return True

    def finish(self, stored_nodes: Mapping[int, tuple[Sequence[int], Sequence[bytes]]]) -> SegmentResult:
        """The block's result. ``stored_nodes`` are the stored subtrees its records complete, by level: their
        indexes and hashes (in index order, as :func:`nodes_by_level` gives them)."""
        start = self._start
        levels = [self._leaves]
        while len(levels[-1]) > 1:
            below = levels[-1]
            levels.append([_sha256(b"\x01" + below[i] + below[i + 1]).digest() for i in range(0, len(below) - 1, 2)])
        bad: list[tuple[int, int, int]] = []  # (end of the subtree, level, index), to sort in completion order
        missing = 0
        if self._problem is None:  # as a page that fails: its subtrees are not compared
            for level in range(1, len(levels)):
                first = start >> level
                computed = levels[level]
                indexes, hashes = stored_nodes.get(level, ((), ()))
                if list(hashes) == computed and list(indexes) == list(range(first, first + len(computed))):
                    continue  # every subtree of this level is stored and right: one comparison in C
                stored = dict(zip(indexes, hashes, strict=True))
                if level < STORED_NODE_LEVEL:  # not stored since: those a log written before kept are compared
                    bad += [((index + 1) << level, level, index) for index, found in stored.items()
                            if 0 <= index - first < len(computed) and found != computed[index - first]]
                    continue
                for offset, value in enumerate(computed):
                    found = stored.get(first + offset)
                    if found is None:
                        missing += 1
                    elif found != value:
                        bad.append(((first + offset + 1) << level, level, first + offset))
        bad.sort()
        top = len(levels) - 1
        return SegmentResult(
            start=start,
            end=self._end,
            checked=len(self._leaves),
            first_index=self._first_index,
            problem=self._problem,
            chain_hash=self._previous,
            frontier=_block_frontier(levels, len(self._leaves)),
            roots={size: _block_frontier(levels, size - start) for size in self._wanted
                   if size <= start + len(self._leaves)},
            bad_nodes=tuple((level, index) for _, level, index in bad),
            missing_nodes=missing,
            stored_above={(level, index): value for level, (indexes, hashes) in stored_nodes.items() if level > top
                          for index, value in zip(indexes, hashes, strict=True)},
            warnings=tuple(self._warnings),
            last_recorded=self._last_recorded,
        )


def nodes_by_level(nodes: Iterable[tuple[int, int, bytes]]) -> dict[int, tuple[list[int], list[bytes]]]:
    """Stored subtrees ``(level, index, hash)`` grouped as :meth:`SegmentChecker.finish` takes them."""
    grouped: dict[int, list[tuple[int, bytes]]] = {}
    for level, index, value in nodes:
        grouped.setdefault(int(level), []).append((int(index), bytes(value)))
    return {level: ([i for i, _ in pairs], [v for _, v in pairs])
            for level, pairs in ((level, sorted(pairs)) for level, pairs in grouped.items())}


def _block_frontier(levels: Sequence[Sequence[bytes]], size: int) -> tuple[tuple[int, bytes], ...]:
    """(level, hash) of the perfect subtrees covering the first ``size`` leaves of a block, largest first."""
    frontier: list[tuple[int, bytes]] = []
    position = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            frontier.append((level, levels[level][position >> level]))
            position += 1 << level
    return tuple(frontier)


def _fold(hashes: Sequence[bytes]) -> bytes:
    """The root over a frontier (perfect subtree hashes, largest first), as :meth:`MerkleAccumulator.root`."""
    if not hashes:
        return EMPTY_ROOT
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = node_hash(left, root)
    return root


class AuditVerifier:
    """Recomputes the log from its stored entries, fed in index order in any number of pages.

    Construct it with the tree sizes of the checkpoints to be checked (their roots are captured on the way),
    :meth:`feed` pages of entries until it returns False or the log is exhausted, then call :meth:`report`.
    With ``check_nodes``, call :meth:`check_nodes` after each page with the stored subtree hashes that page
    completes.
    """

    MAX_NODE_PROBLEMS = 20
    """Differing subtree hashes named one by one; any more are counted in one further problem."""

    def __init__(self, checkpoint_sizes: Iterable[int] = (), *, check_nodes: bool = False) -> None:
        self._tree = MerkleAccumulator()
        if check_nodes:
            self._tree.track_completed()
        self._bad_nodes: list[NodeKey] = []
        self._missing_nodes = 0
        self._previous = GENESIS_CHAIN_HASH
        self._expected = 0
        self._wanted = set(checkpoint_sizes)
        self._roots: dict[int, bytes] = {0: EMPTY_ROOT}
        self._problem: tuple[int, str] | None = None
        self._last_recorded: datetime | None = None
        self._warnings: list[str] = []
        self._short_at: int | None = None

    @property
    def size(self) -> int:
        """Records verified so far (the index of the next one expected)."""
        return self._expected

    @property
    def failed(self) -> bool:
        """Whether a bad entry was found (later entries are then ignored)."""
        return self._problem is not None

    def feed(self, entries: Iterable[Mapping[str, Any]]) -> bool:
        """Check the next entries; returns False once a bad entry is found (feeding more is pointless)."""
        if self._problem is not None:
            return False
        for entry in entries:
            index = int(entry["idx"])
            if index != self._expected:
                self._problem = (min(index, self._expected),
                                 f"expected index {self._expected}, found {index} (gap, repeat or reordering)")
                return False
            problem, body, leaf, recorded = _check_record(
                index, self._expected, str(entry["record"]), entry["leaf_hash"], entry["chain_hash"],
                self._previous, entry.get("record_id", _ABSENT), entry.get("event_type", _ABSENT),
                entry.get("subject_ref", _ABSENT), entry.get("recorded_at", _ABSENT))
            if problem is not None:
                self._problem = (index, problem)
                return False
            warning, self._last_recorded = _clock_warning(self._expected, body, recorded, self._last_recorded)
            if warning is not None:
                self._warnings.append(warning)
            self._previous = chain_hash(self._previous, leaf)
            self._tree.append(leaf)
            self._expected += 1
            if self._expected in self._wanted:
                self._roots[self._expected] = self._tree.root()
        return True

    def fail(self, index: int, problem: str) -> None:
        """Name a bad record the caller found itself (one the head does not count, say), unless one is known."""
        if self._problem is None:
            self._problem = (index, problem)

    def warn(self, warning: str) -> None:
        """Add a warning to the report (something the caller noticed that proves no tampering)."""
        self._warnings.append(warning)

    def wanted_within(self, start: int, end: int) -> tuple[int, ...]:
        """The checkpoint sizes whose roots a block of records ``start`` .. ``end - 1`` must report."""
        return tuple(sorted(s for s in self._wanted if start < s <= end))

    def absorb(self, block: SegmentResult) -> bool:
        """Take the result of the next block of the log, checked by a :class:`SegmentChecker`.

        Blocks come in index order, each starting where the records verified so far end, unless the one
        before ended short (its rows ran out): then the next block that has rows names the gap. Returns
        False once a bad record is found, as :meth:`feed` does. With ``check_nodes``, the stored subtrees are
        compared as the blocks arrive (:meth:`check_nodes` is not needed).
        """
        if self._problem is not None:
            return False
        if self._short_at is not None:
            if block.first_index is None:
                return True
            found = block.first_index
            self._problem = (min(found, self._expected),
                             f"expected index {self._expected}, found {found} (gap, repeat or reordering)")
            return False
        if block.start != self._expected:
            raise ValueError(f"a block starting at {block.start} given where record {self._expected} is expected")
        base = self._tree.frontier
        for size, frontier in block.roots.items():
            if size in self._wanted:
                self._roots[size] = _fold(base + tuple(h for _, h in frontier))
        for level, subtree in block.frontier:
            self._tree.append_subtree(level, subtree)
        self._expected += block.checked
        self._previous = block.chain_hash
        self._last_recorded = block.last_recorded
        self._warnings.extend(block.warnings)
        if block.problem is not None:
            self._problem = block.problem
            return False
        self._bad_nodes.extend(block.bad_nodes)
        self._missing_nodes += block.missing_nodes
        self.check_nodes(block.stored_above)
        if block.checked < block.end - block.start:
            self._short_at = self._expected
        return True

    def check_nodes(self, stored: Mapping[NodeKey, bytes]) -> None:
        """Compare the subtrees completed by the entries fed since the last call with their stored hashes."""
        for key, computed in self._tree.take_completed():
            found = stored.get(key)
            if found is None:
                self._missing_nodes += key[0] >= STORED_NODE_LEVEL  # smaller ones are not stored any more
            elif found != computed:
                self._bad_nodes.append(key)

    def report(
        self,
        head: ChainHead,
        checkpoints: Sequence[StoredCheckpoint] = (),
        verifiers: Sequence[VerifierKey] = (),
        *,
        origin: str | None = None,
        retired_at: Mapping[VerifierKey, datetime] | None = None,
    ) -> VerificationReport:
        """Finish: the head against the recomputed log, then every checkpoint (see the module docstring).

        ``retired_at`` maps keys to when they stopped signing (from the database); a checkpoint signed by a
        key after that time is a problem. ``origin``, when given, is the only log name accepted.
        """
        located: list[tuple[int, str]] = []  # (first bad index, problem)
        if self._problem is not None:
            located.append(self._problem)
        else:
            located.extend(self._head_problems(head))
        chain_ok = not located
        unlocated: list[str] = []  # checkpoint problems that implicate no record
        bad_ids: list[int] = []
        matched_sizes: list[int] = [0]
        mismatched: list[tuple[StoredCheckpoint, bytes]] = []
        largest_size = -1
        for stored in sorted(checkpoints, key=lambda c: c.id):
            label = f"checkpoint {stored.id} (size {stored.tree_size})"
            problem, body = _check_checkpoint(stored, verifiers, origin, retired_at)
            if problem is None and stored.tree_size < largest_size:
                problem = f"signed after a checkpoint of size {largest_size}: checkpoint sizes went back"
            largest_size = max(largest_size, stored.tree_size)
            if problem is not None or body is None:
                unlocated.append(f"{label}: {problem}")
                bad_ids.append(stored.id)
            elif body.tree_size > self._expected:
                if self._problem is None:  # otherwise the log is known bad before this size already
                    located.append((
                        self._expected,
                        f"{label} commits to {body.tree_size} records but the log holds {self._expected}: "
                        f"records from index {self._expected} on are missing (truncated log)",
                    ))
                    bad_ids.append(stored.id)
            elif self._root_at(body.tree_size) != body.root_hash:
                mismatched.append((stored, self._root_at(body.tree_size)))
                bad_ids.append(stored.id)
            else:
                matched_sizes.append(body.tree_size)
        unlocated.extend(self._node_problems())
        for stored, recomputed in mismatched:
            vouched = max(s for s in matched_sizes if s < stored.tree_size) if stored.tree_size else 0
            located.append((
                vouched,
                f"checkpoint {stored.id} (size {stored.tree_size}) signs root {stored.root_hash.hex()}, but records "
                f"0..{stored.tree_size - 1} hash to {recomputed.hex()}: a record from index {vouched} to "
                f"{stored.tree_size - 1} was rewritten after it was checkpointed, or the checkpoint is forked",
            ))
        located.sort(key=lambda p: p[0])
        messages = [m for _, m in located] + unlocated
        return VerificationReport(
            ok=not messages,
            size=self._expected,
            root_hex=self._tree.root().hex(),
            first_bad_index=located[0][0] if located else None,
            problem=messages[0] if messages else None,
            checkpoints=len(matched_sizes) - 1,
            bad_checkpoint=min(bad_ids) if bad_ids else None,
            problems=tuple(messages),
            warnings=tuple(self._warnings) + self._node_warnings(),
            chain_ok=chain_ok,
            bad_node=self._bad_nodes[0] if self._bad_nodes else None,
        )

    def _node_problems(self) -> list[str]:
        problems = [
            f"stored Merkle node at level {level}, index {index} (records {index << level} to "
            f"{((index + 1) << level) - 1}) differs from the hash of those records"
            for level, index in self._bad_nodes[: self.MAX_NODE_PROBLEMS]
        ]
        if len(self._bad_nodes) > self.MAX_NODE_PROBLEMS:
            problems.append(f"{len(self._bad_nodes) - self.MAX_NODE_PROBLEMS} more stored Merkle nodes differ")
        return problems

    def _node_warnings(self) -> tuple[str, ...]:
        if not self._missing_nodes:
            return ()
        return (f"{self._missing_nodes} Merkle subtree hashes are not stored (a log written before they were); "
                "proofs needing them read the leaves: run `gateway audit rebuild-nodes`",)

    def _root_at(self, size: int) -> bytes:
        try:
            return self._roots[size]
        except KeyError:
            raise ValueError(f"this verifier was not made with checkpoint size {size}") from None

    def _head_problems(self, head: ChainHead) -> list[tuple[int, str]]:
        last = self._expected - 1 if self._expected else 0
        if self._expected != head.size:
            return [(self._expected, f"the head says {head.size} records, the log holds {self._expected}")]
        if self._previous != head.chain_hash:
            return [(last, "chain hash of the last record differs from the head")]
        if self._tree.root() != head.root():
            return [(last, "Merkle root differs from the head")]
        return []


def _check_checkpoint(
    stored: StoredCheckpoint,
    verifiers: Sequence[VerifierKey],
    origin: str | None,
    retired_at: Mapping[VerifierKey, datetime] | None,
) -> tuple[str | None, Checkpoint | None]:
    """The problem with one stored checkpoint's note (None if sound) and the checkpoint it signs."""
    try:
        opened = open_note(stored.note, verifiers)
        body = Checkpoint.from_text(opened.text)
    except CheckpointError as exc:
        return str(exc), None
    if origin is not None and body.origin != origin:
        return f"signed for log {body.origin!r}, not {origin!r}", None
    if body.tree_size != stored.tree_size or body.root_hash != stored.root_hash:
        return "the stored size or root differs from the signed note", None
    for key in opened.verified_by:
        retired = (retired_at or {}).get(key)
        if retired is not None and stored.signed_at > retired:
            return f"signed by {key.name}+{key.key_id.hex()} after that key was retired ({retired.isoformat()})", None
    return None, body


def verify_audit(
    entries: Iterable[Mapping[str, Any]],
    head: ChainHead,
    checkpoints: Sequence[StoredCheckpoint],
    verifiers: Sequence[VerifierKey],
    *,
    origin: str | None = None,
    retired_at: Mapping[VerifierKey, datetime] | None = None,
) -> VerificationReport:
    """Verify the whole log and its signed checkpoints in one call (see :class:`AuditVerifier`)."""
    verifier = AuditVerifier(c.tree_size for c in checkpoints)
    verifier.feed(entries)
    return verifier.report(head, checkpoints, verifiers, origin=origin, retired_at=retired_at)
