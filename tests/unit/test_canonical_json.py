"""The audit log's canonical JSON: the orjson fast path writes exactly the bytes of RFC 8785 (``rfc8785``).

Audit records are hashed into the Merkle tree, so a single differing byte between the two serialisers would
make records written by one version unverifiable by another. Generated records cover what audit records hold
(ASCII field names, any Unicode text, integers, nested objects and lists) and what forces the checked path
(floats, integers beyond 2**53, non-ASCII keys, astral-plane keys).
"""

from __future__ import annotations

from typing import Any

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit.canonical import _fast_path_safe, canonical_json

_SAFE = 2**53 - 1
_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
_scalars = st.none() | st.booleans() | st.integers(-_SAFE, _SAFE) | _text
_ascii_keys = st.text(st.characters(max_codepoint=127), max_size=8)


def _json(keys: st.SearchStrategy[str], leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
                        max_leaves=20)


@given(_json(_ascii_keys, _scalars))
@settings(max_examples=600, deadline=None)
def test_fast_path_writes_the_bytes_of_rfc8785(value: Any) -> None:
    assert _fast_path_safe(value)
    assert canonical_json(value) == rfc8785.dumps(value)


_awkward = (st.floats(allow_nan=False, allow_infinity=False) | st.integers(_SAFE + 1, 2**53 + 10**6)
            | st.integers(-(2**53 + 10**6), -_SAFE - 1))
_any_keys = st.text(st.characters(exclude_categories=("Cs",)), max_size=4)


@given(_json(_any_keys, _scalars | _awkward))
@settings(max_examples=600, deadline=None)
def test_every_value_gives_the_bytes_of_rfc8785_whichever_path_it_takes(value: Any) -> None:
    try:
        expected = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, ValueError, TypeError):
        return  # integers beyond 2**53 etc.: canonical_json refuses them (tested in test_merkle.py)
    assert canonical_json(value) == expected


def test_values_where_orjson_and_rfc8785_differ_take_the_checked_path() -> None:
    assert not _fast_path_safe({"amount": 1.5})
    assert not _fast_path_safe({"big": 2**53})
    assert not _fast_path_safe({"\U0001d11e": 1, "\ue000": 2})  # UTF-16 and code point orders differ
    assert canonical_json({"\U0001d11e": 1, "\ue000": 2}) == rfc8785.dumps({"\U0001d11e": 1, "\ue000": 2})
    assert canonical_json({"x": 1e21}) == rfc8785.dumps({"x": 1e21})
