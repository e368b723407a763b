"""The offline verifier's building blocks, without a store: the canonical-form check and one-pass proofs.

The verifier checks that every stored record is the RFC 8785 canonical form of itself. It takes a fast path
(orjson with sorted keys) when that provably gives the same bytes, and the RFC 8785 serialiser otherwise; the
property test checks that both always reach the same verdict, on canonical texts and on near misses (key
order, whitespace, escapes, number forms, non-ASCII text).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit.canonical import CanonicalJSONError, canonical_json
from gateway.audit.chain import GENESIS_CHAIN_HASH, chain_hash
from gateway.audit.merkle import inclusion_proof, inclusion_proof_with_root, leaf_hash, root_from_leaf_hashes
from gateway.audit.verify import AuditVerifier

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
        canonical.replace('"v":"x"', '"v":NaN'),
        canonical.replace('"v":"x"', '"v":-0'),
        canonical.replace('"v":"x"', '"v":"\\ud800"'),  # a lone surrogate
        canonical.replace('"v":"x"', '"v":"x","v":"x"'),  # a repeated key
        canonical.replace('{"log_index":0,', '{ "log_index":0,'),
    ):
        assert not verdict_of_the_verifier(almost), almost
    assert verdict_of_the_verifier(canonical.replace('"v":"x"', '"v":"\\u001f\\n\u00e8\U0001f600"'))


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=300), st.data())
def test_inclusion_proof_with_root_is_the_proof_and_the_root(size: int, data: st.DataObject) -> None:
    leaves = [leaf_hash(str(i).encode()) for i in range(size)]
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    assert inclusion_proof_with_root(leaves, index) == (inclusion_proof(leaves, index), root_from_leaf_hashes(leaves))
