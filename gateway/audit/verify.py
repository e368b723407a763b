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

Stored Merkle subtrees (``audit_merkle_nodes``, which proofs are built from): with ``check_nodes``, each
subtree hash the records complete is recomputed and compared with the stored one; a differing one is a
problem naming its level and index (it implicates no record: the records and checkpoints are checked on
their own, never against the stored subtrees), a missing one only a warning (logs written before they were
stored; ``gateway audit rebuild-nodes`` fills them in).

Record times (T-13): the store clamps each record's ``recorded_at`` to at least its predecessor's, so a log
written since then never steps back. A backward step is still reported as a warning, not a failure: logs
written before the clamp may hold one, and a time is not what the hashes protect (an edited time breaks the
chain, or, with every hash recomputed, the signed checkpoints).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.audit.canonical import CanonicalJSONError, canonical_json
from gateway.audit.chain import GENESIS_CHAIN_HASH, ChainHead, chain_hash
from gateway.audit.checkpoint import Checkpoint, CheckpointError, VerifierKey, open_note
from gateway.audit.merkle import EMPTY_ROOT, MerkleAccumulator, NodeKey, leaf_hash
from gateway.audit.stored import StoredCheckpoint

__all__ = ["AuditVerifier", "VerificationReport", "verify_audit", "verify_log"]


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

    The cheap way (orjson with sorted keys, about 30 times faster than the RFC 8785 serialiser) gives the
    same bytes as RFC 8785 for ASCII text without fractions, exponents, NaN or integers beyond 2**53 - 1:
    keys then sort the same by code point and by UTF-16 unit, and both escape the same characters the same
    way. Anything else takes the RFC 8785 serialiser.
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


def _check_entry(entry: Mapping[str, Any], expected: int, previous: bytes) -> str | None:
    return _checked_entry(entry, expected, previous)[0]


def _checked_entry(entry: Mapping[str, Any], expected: int, previous: bytes) -> tuple[str | None, dict[str, Any]]:
    """The problem with ``entry`` (None if it is sound) and its parsed record."""
    index = int(entry["idx"])
    if index != expected:
        return f"expected index {expected}, found {index} (gap, repeat or reordering)", {}
    text = str(entry["record"])
    try:
        body, simple = _parse(text)
        if not isinstance(body, dict):
            return "record text is not a JSON object", {}
        if not (simple and _sorted_json(body) == text.encode("ascii")) and canonical_json(body).decode() != text:
            return "record text is not in canonical form (edited)", body
    except (ValueError, CanonicalJSONError):
        return "record text is not valid JSON", {}
    if body.get("log_index") != index:
        return "record's log_index does not match its position", body
    if body.get("prev_chain_hash") != previous.hex():
        return "record's prev_chain_hash does not match the chain", body
    leaf = leaf_hash(text.encode("utf-8"))
    if leaf != bytes(entry["leaf_hash"]):
        return "leaf hash does not match the record", body
    if chain_hash(previous, leaf) != bytes(entry["chain_hash"]):
        return "chain hash does not match", body
    return _indexed_column_problem(entry, body), body


_INDEXED_COLUMNS = ("record_id", "event_type", "subject_ref")
"""Columns stored beside the record text so queries can select on them (the art. 15 report selects a person's
records by ``subject_ref``). They are copies of the record's own fields, which the hashes protect; a copy that
differs would hide a record from the queries, so it is a problem at that index."""


def _indexed_column_problem(entry: Mapping[str, Any], body: Mapping[str, Any]) -> str | None:
    for column in _INDEXED_COLUMNS:
        if column in entry and entry[column] != body.get(column):
            return f"stored column {column} differs from the record (edited beside the hashed text)"
    if "recorded_at" in entry:
        try:
            recorded = datetime.fromisoformat(str(body.get("recorded_at")))
        except ValueError:
            return "record has no valid recorded_at"
        stored = entry["recorded_at"]
        if isinstance(stored, str):
            stored = datetime.fromisoformat(stored)
        if isinstance(stored, datetime) and stored.tzinfo is None:
            stored = stored.replace(tzinfo=UTC)
        if stored != recorded:
            return "stored column recorded_at differs from the record (edited beside the hashed text)"
    return None


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
            problem, body = _checked_entry(entry, self._expected, self._previous)
            if problem is not None:
                self._problem = (min(index, self._expected), problem)
                return False
            self._check_clock(body)
            leaf = bytes(entry["leaf_hash"])
            self._previous = chain_hash(self._previous, leaf)
            self._tree.append(leaf)
            self._expected += 1
            if self._expected in self._wanted:
                self._roots[self._expected] = self._tree.root()
        return True

    def check_nodes(self, stored: Mapping[NodeKey, bytes]) -> None:
        """Compare the subtrees completed by the entries fed since the last call with their stored hashes."""
        for key, computed in self._tree.take_completed():
            found = stored.get(key)
            if found is None:
                self._missing_nodes += 1
            elif found != computed:
                self._bad_nodes.append(key)

    def _check_clock(self, body: Mapping[str, Any]) -> None:
        try:
            recorded = datetime.fromisoformat(str(body.get("recorded_at")))
        except ValueError:
            self._warnings.append(f"record {self._expected} has no valid recorded_at")
            return
        if self._last_recorded is not None and recorded < self._last_recorded:
            self._warnings.append(
                f"record {self._expected} was recorded at {recorded.isoformat()}, before record "
                f"{self._expected - 1} ({self._last_recorded.isoformat()}): the gateway's clock went back"
            )
        self._last_recorded = recorded

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
