"""The offline verifier's building blocks, without a store: the canonical-form check, one-pass proofs, and
checking the log in aligned blocks (as worker processes do) giving the same report as record by record.

The verifier checks that every stored record is the RFC 8785 canonical form of itself. It takes a fast path
(orjson with sorted keys) when that provably gives the same bytes, and the RFC 8785 serialiser otherwise; the
property test checks that both always reach the same verdict, on canonical texts and on near misses (key
order, whitespace, escapes, number forms, non-ASCII text).
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit.canonical import CanonicalJSONError, canonical_json
from gateway.audit.chain import GENESIS_CHAIN_HASH, ChainHead, chain_hash
from gateway.audit.merkle import (
    MerkleAccumulator,
    NodeKey,
    inclusion_proof,
    inclusion_proof_with_root,
    leaf_hash,
    root_from_leaf_hashes,
)
from gateway.audit.verify import SEGMENT_COLUMNS, AuditVerifier, SegmentChecker, VerificationReport, nodes_by_level

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)


def texts_of(value: Any) -> list[str]:
    """Canonical and almost-canonical serialisations of a record body holding ``value``."""
    body = {"log_index": 0, "prev_chain_hash": GENESIS_CHAIN_HASH.hex(), "value": value}
    texts = [
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True),
        json.dumps(body, sort_keys=True),
        json.dumps({"value": value, **body}, separators=(",", ":"), ensure_ascii=False),
    ]
    with contextlib.suppress(rfc8785.CanonicalizationError):
        texts.append(rfc8785.dumps(body).decode())
    return texts


def verdict_of_the_verifier(text: str) -> bool:
    leaf = leaf_hash(text.encode("utf-8", "surrogatepass"))
    entry = {"idx": 0, "record": text, "leaf_hash": leaf, "chain_hash": chain_hash(GENESIS_CHAIN_HASH, leaf)}
    verifier = AuditVerifier()
    return verifier.feed([entry])


def verdict_of_rfc8785(text: str) -> bool:
    try:
        return canonical_json(json.loads(text)).decode() == text
    except (ValueError, CanonicalJSONError):
        return False


@settings(max_examples=400, deadline=None)
@given(JSON)
def test_the_fast_canonical_check_agrees_with_rfc8785(value: Any) -> None:
    for text in texts_of(value):
        assert verdict_of_the_verifier(text) == verdict_of_rfc8785(text), text


def test_the_fast_canonical_check_on_chosen_near_misses() -> None:
    canonical = rfc8785.dumps({"log_index": 0, "prev_chain_hash": GENESIS_CHAIN_HASH.hex(), "v": "x"}).decode()
    assert verdict_of_the_verifier(canonical)
    for almost in (
        canonical.replace('"v":"x"', '"v":"\\u0078"'),  # an escape that need not be one
        canonical.replace('"v":"x"', '"v":1.0'),  # 1.0 is 1 in RFC 8785
        canonical.replace('"v":"x"', '"v":1E2'),
        canonical.replace('"v":"x"', '"v":9007199254740993'),  # beyond 2**53 - 1
        canonical.replace('"v":"x"', '"v":18446744073709551616'),  # beyond 64 bits: orjson reads a float
        canonical.replace('"v":"x"', '"v":1E400'),
        # orjson writes these back as they are, RFC 8785 as 100000000000000000000 and 0.000001: floats must
        # be found wherever they are nested
        canonical.replace('"v":"x"', '"v":[1e+20]'),
        canonical.replace('"v":"x"', '"v":{"w":[{"x":1e-6}]}'),
        canonical.replace('"v":"x"', '"v":NaN'),
        canonical.replace('"v":"x"', '"v":-0'),
        canonical.replace('"v":"x"', '"v":"\\ud800"'),  # a lone surrogate
        canonical.replace('"v":"x"', '"v":"x","v":"x"'),  # a repeated key
        canonical.replace('{"log_index":0,', '{ "log_index":0,'),
    ):
        assert not verdict_of_the_verifier(almost), almost
    assert verdict_of_the_verifier(canonical.replace('"v":"x"', '"v":"\\u001f\\n\u00e8\U0001f600"'))
    assert verdict_of_the_verifier(canonical.replace('"v":"x"', '"v":{"w":[{"x":1.5}]}'))


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=300), st.data())
def test_inclusion_proof_with_root_is_the_proof_and_the_root(size: int, data: st.DataObject) -> None:
    leaves = [leaf_hash(str(i).encode()) for i in range(size)]
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    assert inclusion_proof_with_root(leaves, index) == (inclusion_proof(leaves, index), root_from_leaf_hashes(leaves))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=6), max_size=12))
def test_appending_aligned_subtrees_is_appending_their_leaves(levels: list[int]) -> None:
    one_by_one, in_blocks = MerkleAccumulator(), MerkleAccumulator()
    one_by_one.track_completed()
    in_blocks.track_completed()
    counter = 0
    for level in sorted(levels, reverse=True):  # largest first keeps every block aligned
        leaves = [leaf_hash(str(counter + i).encode()) for i in range(1 << level)]
        counter += len(leaves)
        one_by_one.extend(leaves)
        in_blocks.append_subtree(level, root_from_leaf_hashes(leaves))
        assert in_blocks.frontier == one_by_one.frontier
        completed_above = [(key, value) for key, value in one_by_one.take_completed() if key[0] > level]
        assert in_blocks.take_completed() == completed_above
    if counter % 2:
        with pytest.raises(ValueError, match="cannot be appended"):
            in_blocks.append_subtree(1, bytes(32))


# --- the log checked in aligned blocks ---------------------------------------------------------------------------

RECORDED = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def build_log(size: int) -> tuple[list[dict[str, Any]], ChainHead, dict[NodeKey, bytes]]:
    """``size`` stored entries as the store writes them, the head, and every stored Merkle subtree hash."""
    head = ChainHead.genesis()
    head.tree.track_completed()
    entries = []
    for index in range(size):
        at = RECORDED + timedelta(seconds=index)
        body = {"event_type": "decision", "log_index": index, "message_ids": [f"m-{index}"], "outcome": "deny",
                "prev_chain_hash": head.chain_hash.hex(), "record_id": f"r-{index}",
                "recorded_at": at.isoformat(), "subject_ref": f"s-{index % 3}"}
        text = canonical_json(body)
        leaf = leaf_hash(text)
        head.chain_hash = chain_hash(head.chain_hash, leaf)
        head.tree.append(leaf)
        head.size += 1
        entries.append({"idx": index, "record": text.decode(), "leaf_hash": leaf, "chain_hash": head.chain_hash,
                        "record_id": body["record_id"], "event_type": "decision",
                        "subject_ref": body["subject_ref"], "recorded_at": at})
    return entries, head, dict(head.tree.take_completed())


def record_by_record(entries: list[dict[str, Any]], head: ChainHead, nodes: dict[NodeKey, bytes],
                     sizes: list[int], page: int) -> VerificationReport:
    """What the verifier did before blocks: pages of entries, each page's completed subtrees compared."""
    verifier = AuditVerifier(sizes, check_nodes=True)
    for start in range(0, len(entries), page):
        if not verifier.feed(entries[start:start + page]):
            break
        verifier.check_nodes(nodes)
    return verifier.report(head)


def in_blocks(entries: list[dict[str, Any]], head: ChainHead, nodes: dict[NodeKey, bytes],
              sizes: list[int], block: int) -> VerificationReport:
    """What ``verify_stored_log`` does: aligned blocks read by index range, checked on their own, absorbed."""
    verifier = AuditVerifier(sizes, check_nodes=True)
    by_index = {e["idx"]: tuple(e[c] for c in SEGMENT_COLUMNS) for e in entries}
    ordered = [by_index[i] for i in sorted(by_index)]
    last = head.size // block * block
    for start in range(0, head.size + 1, block):
        end = min(start + block, head.size + 1)
        rows = ([r for r in ordered if r[0] >= start][: end - start] if start == last
                else [r for r in ordered if start <= r[0] < end])
        checker = SegmentChecker(start, end, by_index.get(start - 1), verifier.wanted_within(start, end))
        checker.feed(rows)
        completed = [(level, index, value) for (level, index), value in nodes.items()
                     if start <= ((index + 1) << level) - 1 < end]
        if not verifier.absorb(checker.finish(nodes_by_level(completed))):
            break
    return verifier.report(head)


TAMPERINGS = ("none", "text", "leaf", "chain", "column", "delete", "delete-tail", "extra", "node", "clock")


@settings(max_examples=150, deadline=None)
@given(size=st.integers(min_value=1, max_value=40), block_level=st.integers(min_value=0, max_value=4),
       tampering=st.sampled_from(TAMPERINGS), data=st.data())
def test_blocks_give_the_report_of_record_by_record(size: int, block_level: int, tampering: str,
                                                    data: st.DataObject) -> None:
    entries, head, nodes = build_log(size)
    where = data.draw(st.integers(min_value=0, max_value=size - 1))
    sizes = sorted(data.draw(st.sets(st.integers(min_value=1, max_value=size), max_size=4)))
    entry = entries[where]
    if tampering == "text":
        entry["record"] = entry["record"].replace('"outcome":"deny"', '"outcome":"eeny"')
    elif tampering == "leaf":
        entry["leaf_hash"] = bytes(32)
    elif tampering == "chain":
        entry["chain_hash"] = bytes(32)
    elif tampering == "column":
        entry["subject_ref"] = "forged"
    elif tampering == "delete":
        del entries[where]
    elif tampering == "delete-tail":
        del entries[where:]
    elif tampering == "extra":
        entries.append({**entries[-1], "idx": size + data.draw(st.integers(min_value=0, max_value=3))})
    elif tampering == "node" and nodes:
        key = data.draw(st.sampled_from(sorted(nodes)))
        nodes[key] = bytes(32)
    elif tampering == "clock":  # a time edited with every hash recomputed: a warning, or the signed roots differ
        later = entries[where:]
        rebuilt, _, _ = build_log(size)
        entries[:] = rebuilt[:where] + later
        entry["recorded_at"] = RECORDED - timedelta(days=1)
    one_by_one = record_by_record(entries, head, nodes, sizes, 1 << block_level)
    blocked = in_blocks(entries, head, nodes, sizes, 1 << block_level)
    assert (blocked.first_bad_index, blocked.problem) == (one_by_one.first_bad_index, one_by_one.problem)
    if one_by_one.first_bad_index is None:  # else the subtrees compared can differ: a failing page's are skipped
        assert blocked == one_by_one


def test_a_block_must_be_aligned() -> None:
    with pytest.raises(ValueError, match="aligned"):
        SegmentChecker(4, 12, None)
    SegmentChecker(8, 12, None)
